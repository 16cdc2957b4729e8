/* Unit tests for src/core: errors, fs helpers (atomic write, mkdir -p,
 * rm -rf that refuses to cross mounts, locks), id validation, JSON, roots. */
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/util.h"
#include "hcs/hcs.h"
#include "tap.h"

static char *make_tmpdir(void) {
  char tmpl[] = "/tmp/hcs-test.XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? hcs_xstrdup(d) : NULL;
}

static void test_errors(void) {
  hcs_error_t err = NULL;
  int r = hcs_error_make(&err, ENOENT, "open `%s`", "/x");
  is_int(r, -1, "hcs_error_make returns -1");
  is_str(hcs_error_message(err), "open `/x`: No such file or directory", "message has strerror suffix");
  is_int(hcs_error_status(err), ENOENT, "status kept");
  hcs_error_wrap(&err, "import layer `%s`", "abc");
  is_str(hcs_error_message(err), "import layer `abc`: open `/x`: No such file or directory", "wrap prefixes context");
  hcs_error_make(&err, 0, "bad input at %s", "Container.Memory");
  is_str(hcs_error_message(err), "bad input at Container.Memory", "a new error replaces the old, no errno suffix");
  is_int(hcs_error_status(err), 0, "logical errors have status 0");
  hcs_error_release(&err);
  ok(err == NULL, "release resets to NULL");
  hcs_error_release(&err);
  ok(1, "release is idempotent");
  is_str(hcs_error_message(NULL), "", "message of no error is empty");
  is_int(hcs_error_make(NULL, EINVAL, "ignored"), -1, "a NULL error pointer is allowed");
}

static void test_atomic_write(const char *dir) {
  hcs_error_t err = NULL;
  cleanup_free char *p = hcs_xasprintf("%s/state.json", dir);
  ok(hcs_write_file_atomic(p, "one", 3, 0600, &err) == 0, "atomic write creates");
  ok(hcs_write_file_atomic(p, "second", 6, 0600, &err) == 0, "atomic write replaces");
  cleanup_free char *got = NULL;
  size_t len = 0;
  ok(hcs_read_file(p, &got, &len, &err) == 0 && len == 6, "read back");
  is_str(got, "second", "content replaced whole");
  struct stat st;
  ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "mode applied");
  cleanup_free char *tmp = hcs_xasprintf("%s.tmp.%d", p, (int)getpid());
  ok(!hcs_path_exists(tmp), "no temporary file left");
  cleanup_free char *bad = hcs_xasprintf("%s/missing/dir/file", dir);
  ok(hcs_write_file_atomic(bad, "x", 1, 0600, &err) < 0, "write into a missing dir fails");
  has_substr(hcs_error_message(err), "missing/dir/file.tmp", "error names the path");
  is_int(hcs_error_status(err), ENOENT, "with ENOENT");
  hcs_error_release(&err);
  /* The runtime-state variant: the same replace without the fsyncs. */
  ok(hcs_write_file_replace(p, "third!", 6, 0644, &err) == 0, "replace without fsync");
  free(got);
  got = NULL;
  ok(hcs_read_file(p, &got, &len, &err) == 0 && len == 6 && strcmp(got, "third!") == 0, "read the replaced content");
  ok(!hcs_path_exists(tmp), "no temporary file left by the replace");
  ok(hcs_write_file_replace(bad, "x", 1, 0600, &err) < 0 && hcs_error_status(err) == ENOENT,
     "replace into a missing dir fails with ENOENT");
  hcs_error_release(&err);
  ok(hcs_read_file(bad, &got, NULL, &err) < 0 && hcs_error_status(err) == ENOENT, "read of a missing file fails");
  hcs_error_release(&err);
}

static void test_mkdir_rm(const char *dir) {
  hcs_error_t err = NULL;
  cleanup_free char *deep = hcs_xasprintf("%s/a/b/c/", dir);
  ok(hcs_mkdir_p(deep, 0755, &err) == 0, "mkdir -p deep path");
  ok(hcs_mkdir_p(deep, 0755, &err) == 0, "mkdir -p is idempotent");
  cleanup_free char *file = hcs_xasprintf("%s/a/file", dir);
  hcs_write_file_atomic(file, "x", 1, 0644, &err);
  cleanup_free char *under_file = hcs_xasprintf("%s/a/file/sub", dir);
  ok(hcs_mkdir_p(under_file, 0755, &err) < 0, "mkdir -p under a file fails");
  hcs_error_release(&err);

  /* A symlink inside the tree pointing outside must not be followed. */
  cleanup_free char *outside = hcs_xasprintf("%s/outside", dir);
  hcs_mkdir_p(outside, 0755, &err);
  cleanup_free char *keep = hcs_xasprintf("%s/outside/keep", dir);
  hcs_write_file_atomic(keep, "k", 1, 0644, &err);
  cleanup_free char *link = hcs_xasprintf("%s/a/b/link", dir);
  ok(symlink(outside, link) == 0, "create symlink to outside");
  cleanup_free char *a = hcs_xasprintf("%s/a", dir);
  ok(hcs_rm_rf(a, &err) == 0, "rm -rf a tree");
  ok(!hcs_path_exists(a), "tree is gone");
  ok(hcs_path_exists(keep), "symlink target outside was not followed");
  ok(hcs_rm_rf(a, &err) == 0, "rm -rf of a missing path is fine");
}

/* rm -rf must refuse to descend into a mount point (a mounted rootfs or a
 * bind of host data must never be emptied).  Runs in a private mount ns. */
static void test_rm_refuses_mounts(const char *dir) {
  pid_t pid = fork();
  if (pid == 0) {
    hcs_error_t err = NULL;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(77);
    char *tree = hcs_xasprintf("%s/m", dir), *mnt = hcs_xasprintf("%s/m/mnt", dir);
    char *data = hcs_xasprintf("%s/m/mnt/data", dir);
    if (hcs_mkdir_p(mnt, 0755, &err) < 0) _exit(2);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) _exit(77);
    if (hcs_write_file_atomic(data, "d", 1, 0644, &err) < 0) _exit(3);
    int r = hcs_rm_rf(tree, &err);
    int busy = r < 0 && hcs_error_status(err) == EBUSY;
    int kept = hcs_path_exists(data);
    umount(mnt);
    hcs_error_release(&err);
    hcs_rm_rf(tree, &err);
    _exit(busy && kept ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    ok(1, "# SKIP mount namespaces unavailable");
    return;
  }
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rm -rf stops at a mount point with EBUSY and keeps its data");
}

static void test_lock(const char *dir) {
  hcs_error_t err = NULL;
  cleanup_free char *p = hcs_xasprintf("%s/lock", dir);
  int fd = hcs_lock_file(p, false, &err);
  ok(fd >= 0, "take an exclusive lock");
  int other = open(p, O_RDWR);
  ok(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "a second exclusive lock is refused");
  close(fd);
  ok(flock(other, LOCK_EX | LOCK_NB) == 0, "lock released on close");
  close(other);
  int s1 = hcs_lock_file(p, true, &err), s2 = hcs_lock_file(p, true, &err);
  ok(s1 >= 0 && s2 >= 0, "shared locks coexist");
  close(s1);
  close(s2);
}

static void test_ids(void) {
  hcs_error_t err = NULL;
  ok(hcs_validate_id("layer id", "abc-123_x.y", &err) == 0, "plain id accepted");
  static const char *const bad[] = {"", ".hidden", "-opt", "a/b", "..", "a b", "caf\xc3\xa9"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(bad); i++) {
    ok(hcs_validate_id("layer id", bad[i], &err) < 0, "id `%s` refused", bad[i]);
    has_substr(hcs_error_message(err), "invalid layer id", "error says what was invalid");
    hcs_error_release(&err);
  }
  char long_id[200];
  memset(long_id, 'a', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  ok(hcs_validate_id("id", long_id, &err) < 0, "overlong id refused");
  has_substr(hcs_error_message(err), "longer than 128", "error says why");
  hcs_error_release(&err);
}

static void test_json(const char *dir) {
  hcs_error_t err = NULL;
  cleanup_json json_t *j = hcs_json_parse("{\"a\": 1, \"a\": 2}", "config", &err);
  ok(j == NULL, "duplicate keys refused");
  has_substr(hcs_error_message(err), "parse config: line 1", "parse error is located");
  hcs_error_release(&err);
  cleanup_json json_t *doc = json_pack("{s:i,s:[s]}", "b", 2, "a", "x");
  cleanup_free char *p = hcs_xasprintf("%s/doc.json", dir);
  ok(hcs_json_write_atomic(p, doc, &err) == 0, "write JSON atomically");
  cleanup_json json_t *back = hcs_json_load_file(p, &err);
  ok(back && json_equal(doc, back), "JSON round trip");
  cleanup_free char *s = hcs_json_dumps(doc);
  is_str(s, "{\"a\":[\"x\"],\"b\":2}", "dumps is compact with sorted keys");
  cleanup_free char *now = hcs_now_rfc3339();
  ok(strlen(now) == 30 && now[4] == '-' && now[10] == 'T' && now[29] == 'Z', "RFC 3339 timestamp: %s", now);
}

static void test_roots(void) {
  unsetenv("HCS_ROOT");
  unsetenv("HCS_RUN_ROOT");
  cleanup_free char *r1 = hcs_root_resolve(NULL), *rr1 = hcs_run_root_resolve(NULL);
  is_str(r1, "/var/lib/hcs", "default state root");
  is_str(rr1, "/run/hcs", "default runtime root");
  cleanup_free char *r2 = hcs_root_resolve("/tmp/x"), *rr2 = hcs_run_root_resolve("/tmp/x");
  is_str(r2, "/tmp/x", "explicit root wins");
  is_str(rr2, "/tmp/x/run", "runtime root follows an overridden root");
  setenv("HCS_ROOT", "/tmp/y", 1);
  cleanup_free char *r3 = hcs_root_resolve(NULL), *rr3 = hcs_run_root_resolve(NULL);
  is_str(r3, "/tmp/y", "HCS_ROOT used");
  is_str(rr3, "/tmp/y/run", "runtime root under HCS_ROOT");
  unsetenv("HCS_ROOT");
}

static int sink_calls;
static char sink_last[256];
static void sink(hcs_log_level_t level, const char *msg, void *ud) {
  (void)level;
  sink_calls += *(int *)ud;
  snprintf(sink_last, sizeof sink_last, "%s", msg);
}

static void test_log(void) {
  int one = 1;
  hcs_log_set_sink(sink, &one);
  hcs_log_set_level(HCS_LOG_INFO);
  hcs_debug("hidden %d", 1);
  is_int(sink_calls, 0, "below the level: not delivered");
  hcs_info("shown %d", 2);
  is_int(sink_calls, 1, "at the level: delivered to the sink");
  is_str(sink_last, "shown 2", "message formatted");
  is_int(hcs_log_level_from_string("warning"), HCS_LOG_WARNING, "level names parse");
  is_int(hcs_log_level_from_string("loud"), -1, "unknown level name");
  hcs_log_set_sink(NULL, NULL);
  hcs_log_set_level(HCS_LOG_WARNING);
}

static void test_host(void) {
  hcs_error_t err = NULL;
  cleanup_free char *caps = hcs_host_capabilities(&err);
  ok(caps != NULL, "capabilities probe");
  cleanup_json json_t *j = hcs_json_parse(caps, "capabilities", &err);
  ok(j != NULL, "capabilities are JSON");
  is_str(json_string_value(json_object_get(j, "Version")), hcs_version(), "version in capabilities");
  is_str(json_string_value(json_object_get(json_object_get(j, "Cgroup"), "Mode")),
         hcs_cgroup_mode_name(hcs_host_cgroup_mode()), "cgroup mode reported");
  ok(json_is_true(json_object_get(json_object_get(j, "Namespaces"), "mnt")), "mount namespaces present");
  ok(json_is_boolean(json_object_get(j, "Overlayfs")), "overlayfs reported");
}

int main(void) {
  cleanup_free char *dir = make_tmpdir();
  ok(dir != NULL, "temporary directory");
  if (!dir) return tap_done();
  test_errors();
  test_atomic_write(dir);
  test_mkdir_rm(dir);
  test_rm_refuses_mounts(dir);
  test_lock(dir);
  test_ids();
  test_json(dir);
  test_roots();
  test_log();
  test_host();
  hcs_error_t err = NULL;
  ok(hcs_rm_rf(dir, &err) == 0 && !hcs_path_exists(dir), "test root removed");
  return tap_done();
}
