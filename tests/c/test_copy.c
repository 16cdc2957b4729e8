/* hcs_fs_copy_in: copies land inside the root whatever symlinks it holds. */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The first block major /proc/devices does not list: a node with it opens
 * no driver (ENXIO), so even a failing test never writes into a disk. */
static int unused_block_major(void) {
  cleanup_free char *text = NULL;
  if (hcs_read_file("/proc/devices", &text, NULL, NULL) < 0) return -1;
  char *block = strstr(text, "Block devices:");
  if (block == NULL) return -1;
  for (int m = 240; m <= 254; m++) {
    char line[16];
    snprintf(line, sizeof line, "\n%3d ", m);
    if (strstr(block, line) == NULL) return m;
  }
  return -1;
}

static bool no_temporaries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  bool clean = d != NULL;
  while (d && (de = readdir(d)) != NULL)
    if (strncmp(de->d_name, ".hcs-copy-", 10) == 0) clean = false;
  if (d) closedir(d);
  return clean;
}

/* Plant a node at `dst` in the root and copy over it in a child with an
 * alarm, so a copy that opens a FIFO fails the test instead of hanging. */
static void check_replaced(const char *root, const char *src, const char *dst, mode_t mode, dev_t dev) {
  cleanup_free char *node = hcs_xasprintf("%s%s", root, dst);
  ok(mknod(node, mode, dev) == 0, "plant a %s at %s", S_ISFIFO(mode) ? "FIFO" : "device node", dst);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    hcs_error_t e = NULL;
    _exit(hcs_fs_copy_in(root, src, dst, &e) == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "copy onto %s returns (status %#x)", dst, status);
  struct stat st;
  bool regular = lstat(node, &st) == 0 && S_ISREG(st.st_mode);
  ok(regular && (st.st_mode & 0777) == 0755, "%s is now a regular file with the source's mode", dst);
  cleanup_free char *got = regular ? slurp(node) : NULL; /* never read a FIFO */
  is_str(got, "#!/bin/sh\necho hi\n", "with the source's content");
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

  /* A symlink at the final component is replaced, never followed. */
  cleanup_free char *victim = hcs_xasprintf("%s/victim", outside);
  put(victim, "keep");
  cleanup_free char *trap = hcs_xasprintf("%s/trap", root);
  ok(symlink(victim, trap) == 0, "plant /trap -> host file");
  ok(hcs_fs_copy_in(root, src, "/trap", &err) == 0, "copy onto a symlink: %s", hcs_error_message(err));
  cleanup_free char *kept = slurp(victim);
  is_str(kept, "keep", "the host file is untouched");
  ok(lstat(trap, &st) == 0 && S_ISREG(st.st_mode), "the link was replaced by a regular file");

  /* What the image put at the destination is never opened: a device node
   * (writing into a host disk as root) or a FIFO (hanging the caller) is
   * replaced by a new regular file. */
  check_replaced(root, src, "/dev-null", S_IFCHR | 0666, makedev(1, 3));
  check_replaced(root, src, "/fifo", S_IFIFO | 0644, 0);
  int major = unused_block_major();
  if (major > 0)
    check_replaced(root, src, "/disk", S_IFBLK | 0600, makedev((unsigned)major, 0));
  else
    ok(1, "# SKIP no unused block major");
  cleanup_free char *sock_dir = hcs_xasprintf("%s/etc2", root);
  hcs_mkdir_p(sock_dir, 0755, &err);
  ok(hcs_fs_copy_in(root, src, "/etc2/hosts", &err) == 0, "copy onto a missing file");
  ok(no_temporaries(sock_dir) && no_temporaries(root), "no temporary file is left beside the copies");

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
