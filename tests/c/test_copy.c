/* hcs_fs_copy_in: copies land inside the root whatever symlinks it holds. */
#include <sys/stat.h>

#include "core/util.h"
#include "hcs/fs.h"
#include "tap.h"

static void put(const char *path, const char *data) {
  hcs_error_t err = NULL;
  hcs_write_file_atomic(path, data, strlen(data), 0644, &err);
  hcs_error_release(&err);
}

static char *slurp(const char *path) {
  char *s = NULL;
  if (hcs_read_file(path, &s, NULL, NULL) < 0) return NULL;
  return s;
}

int main(void) {
  char tmpl[] = "/tmp/hcs-test.XXXXXX";
  char *dir = mkdtemp(tmpl);
  ok(dir != NULL, "temporary directory");
  hcs_error_t err = NULL;
  cleanup_free char *root = hcs_xasprintf("%s/root", dir), *host = hcs_xasprintf("%s/host", dir);
  cleanup_free char *outside = hcs_xasprintf("%s/outside", dir);
  hcs_mkdir_p(root, 0755, &err);
  hcs_mkdir_p(host, 0755, &err);
  hcs_mkdir_p(outside, 0755, &err);
  cleanup_free char *src = hcs_xasprintf("%s/app.sh", host);
  put(src, "#!/bin/sh\necho hi\n");
  chmod(src, 0755);

  ok(hcs_fs_copy_in(root, src, "/app/bin/app.sh", &err) == 0, "copy a file, creating parents: %s",
     hcs_error_message(err));
  cleanup_free char *landed = hcs_xasprintf("%s/app/bin/app.sh", root);
  cleanup_free char *got = slurp(landed);
  is_str(got, "#!/bin/sh\necho hi\n", "content copied");
  struct stat st;
  ok(stat(landed, &st) == 0 && (st.st_mode & 0777) == 0755, "mode kept");

  ok(hcs_fs_copy_in(root, src, "/app/", &err) == 0, "copy into a directory given with a slash");
  cleanup_free char *into = hcs_xasprintf("%s/app/app.sh", root);
  ok(hcs_path_exists(into), "file copied under its own name");

  /* An absolute symlink inside the root must resolve inside the root. */
  cleanup_free char *etc = hcs_xasprintf("%s/etc", root);
  ok(symlink(outside, etc) == 0, "plant /etc -> host directory (absolute)");
  ok(hcs_fs_copy_in(root, src, "/etc/evil", &err) < 0, "the symlink's target does not exist inside the root: refused");
  hcs_error_release(&err);
  cleanup_free char *escaped = hcs_xasprintf("%s/evil", outside);
  ok(!hcs_path_exists(escaped), "nothing written to the host directory");
  cleanup_free char *inside = hcs_xasprintf("%s%s", root, outside);
  hcs_mkdir_p(inside, 0755, &err);
  ok(hcs_fs_copy_in(root, src, "/etc/evil", &err) == 0, "copy through the symlink: %s", hcs_error_message(err));
  ok(!hcs_path_exists(escaped), "still nothing written to the host directory");
  cleanup_free char *contained = hcs_xasprintf("%s%s/evil", root, outside);
  ok(hcs_path_exists(contained), "written under the root instead");

  /* A relative symlink climbing out is clamped at the root. */
  cleanup_free char *up = hcs_xasprintf("%s/up", root);
  ok(symlink("../../../../../../../", up) == 0, "plant /up -> ../../..");
  ok(hcs_fs_copy_in(root, src, "/up/x", &err) == 0, "copy through the climbing symlink");
  cleanup_free char *at_root = hcs_xasprintf("%s/x", root);
  ok(hcs_path_exists(at_root), "clamped to the root");

  /* A symlink at the final component is replaced by O_NOFOLLOW refusal. */
  cleanup_free char *victim = hcs_xasprintf("%s/victim", outside);
  put(victim, "keep");
  cleanup_free char *trap = hcs_xasprintf("%s/trap", root);
  ok(symlink(victim, trap) == 0, "plant /trap -> host file");
  ok(hcs_fs_copy_in(root, src, "/trap", &err) < 0, "copy onto a symlink is refused");
  has_substr(hcs_error_message(err), "/trap", "the error names the destination");
  hcs_error_release(&err);
  cleanup_free char *kept = slurp(victim);
  is_str(kept, "keep", "the host file is untouched");

  /* Directories copy recursively, symlinks copied as links. */
  cleanup_free char *tree = hcs_xasprintf("%s/tree/sub", host);
  hcs_mkdir_p(tree, 0755, &err);
  cleanup_free char *leaf = hcs_xasprintf("%s/tree/sub/leaf", host), *lnk = hcs_xasprintf("%s/tree/link", host);
  put(leaf, "leaf");
  ok(symlink("/etc/passwd", lnk) == 0, "source tree with a symlink");
  cleanup_free char *srctree = hcs_xasprintf("%s/tree", host);
  ok(hcs_fs_copy_in(root, srctree, "/opt/tree", &err) == 0, "copy a directory tree");
  cleanup_free char *leaf2 = hcs_xasprintf("%s/opt/tree/sub/leaf", root),
                    *lnk2 = hcs_xasprintf("%s/opt/tree/link", root);
  cleanup_free char *leafgot = slurp(leaf2);
  is_str(leafgot, "leaf", "nested file copied");
  char target[64] = "";
  ok(readlink(lnk2, target, sizeof target - 1) > 0 && strcmp(target, "/etc/passwd") == 0, "symlink copied as a link");

  ok(hcs_fs_copy_in(root, "/nonexistent/file", "/x", &err) < 0, "a missing source is an error");
  has_substr(hcs_error_message(err), "/nonexistent/file", "naming the source");
  hcs_error_release(&err);
  ok(hcs_fs_copy_in(root, src, "/..", &err) < 0, "`..` is not a destination");
  has_substr(hcs_error_message(err), "`..` is not allowed", "and the error says so");
  hcs_error_release(&err);
  ok(hcs_fs_copy_in(root, src, "/a/../../b", &err) < 0, "`..` inside a path is refused");
  hcs_error_release(&err);

  ok(hcs_rm_rf(dir, &err) == 0, "clean up");
  return tap_done();
}
