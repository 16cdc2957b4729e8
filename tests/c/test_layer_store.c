/* The layer store: import with ids and parents, layerchain.json, inspect,
 * list, exists, refcounts, scratch layers, activation (a 120-layer chain),
 * destroy rules, sweeping of killed imports, and bad inputs with clear
 * errors. */
#include <jansson.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

static char *T, *root;
static hcs_layer_store_t *store;

static char *tar_with(const char *name, const char *file, const char *content) {
  static int n;
  char *p = NULL;
  if (asprintf(&p, "%s/%s-%d.tar", T, name, n++) < 0) abort();
  struct t_entry e[] = {{'d', "etc", NULL, 0, NULL}, {'f', file, content, 0, NULL}};
  if (t_write_tar(p, e, 2, NULL) < 0) abort();
  return p;
}

static void die_now(uint64_t done, uint64_t total, void *data) {
  (void)done, (void)total, (void)data;
  kill(getpid(), SIGKILL);
}

static int count_dir(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) n++;
  if (d) closedir(d);
  return n;
}

static json_t *inspect(const char *id) {
  hcs_error_t err = NULL;
  char *s = hcs_layer_inspect(store, id, &err);
  json_t *j = s ? json_loads(s, 0, NULL) : NULL;
  free(s);
  hcs_error_release(&err);
  return j;
}

static void expect_error(int failed, hcs_error_t *err, const char *want, const char *what) {
  ok(failed, "%s: refused", what);
  has_substr(hcs_error_message(*err), want, "%s: clear error", what);
  hcs_error_release(err);
}

int main(void) {
  T = t_tmpdir();
  if (asprintf(&root, "%s/root", T) < 0) abort();
  hcs_error_t err = NULL;

  /* leftovers of a killed import are swept; a live one is not */
  char p[4096];
  snprintf(p, sizeof p, "%s/layers/.tmp/import-dead/diff", root);
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "mkdir -p %s && touch %s/../../import-dead.lock", p, p);
  ok(system(cmd) == 0, "fake a killed import");
  snprintf(p, sizeof p, "%s/layers/.tmp/import-live", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/layers/.tmp/import-live.lock", root);
  int live = open(p, O_RDWR | O_CREAT, 0600);
  ok(live >= 0 && flock(live, LOCK_EX) == 0, "fake a running import (lock held)");
  store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store: %s", hcs_error_message(err));
  snprintf(p, sizeof p, "%s/layers/.tmp/import-dead", root);
  is_int(access(p, F_OK), -1, "killed import swept on open");
  snprintf(p, sizeof p, "%s/layers/.tmp/import-live", root);
  is_int(access(p, F_OK), 0, "running import left alone");
  close(live);
  hcs_layer_store_close(store);
  store = hcs_layer_store_open(root, &err);
  is_int(access(p, F_OK), -1, "swept once its lock is released");

  /* a base layer with a derived id */
  char *tar1 = tar_with("base", "etc/base", "base\n");
  char *base = hcs_layer_import_file(store, tar1, NULL, &err);
  ok(base != NULL, "import base layer: %s", hcs_error_message(err));
  json_t *m = inspect(base);
  ok(m != NULL, "inspect base");
  const char *diff_id = json_string_value(json_object_get(m, "DiffID"));
  ok(diff_id && strncmp(diff_id, "sha256:", 7) == 0 && strcmp(diff_id + 7, base) == 0,
     "derived id is the diff (= chain) id hex of a base layer");
  char *cid = hcs_layer_chain_id(NULL, diff_id);
  is_str(cid, diff_id, "chain id of a base layer is its diff id");
  free(cid);
  is_str(json_string_value(json_object_get(m, "Kind")), "layer", "Kind layer");
  is_int(json_array_size(json_object_get(m, "Parents")), 0, "no parents");
  is_int(json_integer_value(json_object_get(m, "RefCount")), 0, "RefCount 0");
  ok(json_integer_value(json_object_get(m, "Size")) > 0, "Size set");
  is_str(json_string_value(json_object_get(m, "Compression")), "none", "Compression detected");
  ok(json_is_false(json_object_get(m, "Active")), "not active");
  json_decref(m);

  /* bad inputs */
  expect_error(hcs_layer_import_file(store, tar1, &(hcs_layer_import_opts_t){.id = base}, &err) == NULL, &err,
               "already exists", "duplicate id");
  const char *nope[] = {"nope", NULL};
  expect_error(hcs_layer_import_file(store, tar1, &(hcs_layer_import_opts_t){.id = "x", .parents = nope}, &err) == NULL,
               &err, "unknown parent layer `nope`", "unknown parent");
  expect_error(hcs_layer_import_file(store, tar1, &(hcs_layer_import_opts_t){.id = "../x"}, &err) == NULL, &err,
               "invalid layer id", "invalid id");
  expect_error(hcs_layer_import_file(store, tar1, &(hcs_layer_import_opts_t){.id = "x", .expect_diff_id = "sha256:00"},
                                     &err) == NULL,
               &err, "diff id mismatch", "diff id mismatch");
  snprintf(p, sizeof p, "%s/corrupt.tar.gz", T);
  t_write_file(p, "\x1f\x8b\x08\x00garbage that is not deflate data at all................");
  expect_error(hcs_layer_import_file(store, p, NULL, &err) == NULL, &err, "gzip", "corrupt gzip");
  snprintf(p, sizeof p, "%s/notatar", T);
  t_write_file(p, "hello, this is not an archive\n");
  expect_error(hcs_layer_import_file(store, p, NULL, &err) == NULL, &err, "read archive", "not a tar");
  snprintf(p, sizeof p, "%s/trunc.tar.gz", T);
  snprintf(cmd, sizeof cmd, "gzip -c %s | head -c 60 > %s", tar1, p);
  ok(system(cmd) == 0, "make a truncated gzip");
  expect_error(hcs_layer_import_file(store, p, NULL, &err) == NULL, &err, "truncated", "truncated gzip");
  expect_error(hcs_layer_import_file(store, "/nonexistent.tar", NULL, &err) == NULL, &err, "/nonexistent.tar",
               "missing file");

  /* a child: layerchain.json, parent checks */
  const char *pbase[] = {base, NULL};
  char *tar2 = tar_with("child", "etc/child", "child\n");
  char *child = hcs_layer_import_file(store, tar2, &(hcs_layer_import_opts_t){.id = "child", .parents = pbase}, &err);
  ok(child != NULL, "import child with a parent: %s", hcs_error_message(err));
  {
    json_t *cm = inspect("child"), *bm = inspect(base);
    char *want = hcs_layer_chain_id(json_string_value(json_object_get(bm, "ChainID")),
                                    json_string_value(json_object_get(cm, "DiffID")));
    is_str(json_string_value(json_object_get(cm, "ChainID")), want,
           "ChainID = sha256(parent chain id + ' ' + diff id)");
    char cmd2[512];
    snprintf(cmd2, sizeof cmd2, "printf '%%s' '%s %s' | sha256sum | grep -q %s",
             json_string_value(json_object_get(bm, "ChainID")), json_string_value(json_object_get(cm, "DiffID")),
             want + 7);
    ok(system(cmd2) == 0, "chain id matches sha256sum of the OCI formula");
    free(want);
    json_decref(cm);
    json_decref(bm);
  }
  snprintf(p, sizeof p, "%s/layers/child/layerchain.json", root);
  json_t *chain = json_load_file(p, 0, NULL);
  snprintf(cmd, sizeof cmd, "%s/layers/%s", root, base);
  ok(json_array_size(chain) == 1 && strcmp(json_string_value(json_array_get(chain, 0)), cmd) == 0,
     "layerchain.json lists the parent path");
  json_decref(chain);
  const char *wrong[] = {"child", "bogus", NULL};
  expect_error(hcs_layer_create_scratch(store, "s", wrong, &err) < 0, &err, "do not match", "inconsistent chain");
  const char *full[] = {"child", base, NULL};
  ok(hcs_layer_create_scratch(store, "s", full, &err) == 0, "scratch over the full chain: %s", hcs_error_message(err));
  expect_error(hcs_layer_create_scratch(store, "s", full, &err) < 0, &err, "already exists", "duplicate scratch");
  const char *sp[] = {"s", NULL};
  expect_error(hcs_layer_create_scratch(store, "s2", sp, &err) < 0, &err, "scratch layer", "scratch as parent");

  is_int(hcs_layer_exists(store, "child", &err), 1, "exists: yes");
  is_int(hcs_layer_exists(store, "other", &err), 0, "exists: no");
  is_int(hcs_layer_exists(store, "a/b", &err), -1, "exists: invalid id is an error");
  hcs_error_release(&err);

  char *list = hcs_layer_list(store, &err);
  json_t *l = json_loads(list, 0, NULL);
  is_int(json_array_size(l), 3, "list: three layers");
  is_str(json_string_value(json_object_get(json_array_get(l, 0), "Id")), base, "list sorted by id");
  json_decref(l);
  free(list);

  /* destroy rules */
  expect_error(hcs_layer_destroy(store, base, true, &err) < 0, &err, "depends on it", "destroy a parent (even forced)");
  is_int(hcs_layer_acquire(store, "child", &err), 1, "acquire -> 1");
  is_int(hcs_layer_acquire(store, "child", &err), 2, "acquire -> 2");
  is_int(hcs_layer_release(store, "child", &err), 1, "release -> 1");
  ok(hcs_layer_activate(store, "s", NULL, &err) == 0, "activate scratch: %s", hcs_error_message(err));
  char *mp = hcs_layer_get_mount_path(store, "s", &err);
  ok(mp != NULL, "mount path: %s", mp ? mp : hcs_error_message(err));
  snprintf(p, sizeof p, "%s/etc/base", mp ? mp : "/nonexistent");
  char *content = t_read_file(p);
  is_str(content, "base\n", "the base layer is visible through the mount");
  free(content);
  snprintf(p, sizeof p, "%s/etc/new", mp ? mp : "/nonexistent");
  ok(t_write_file(p, "new\n") == 0, "the scratch is writable");
  snprintf(p, sizeof p, "%s/layers/s/diff/etc/new", root);
  is_int(access(p, F_OK), 0, "writes land in the scratch layer");
  ok(hcs_layer_activate(store, "s", NULL, &err) == 0, "activate again at the same path: no-op");
  snprintf(p, sizeof p, "%s/elsewhere", T);
  expect_error(hcs_layer_activate(store, "s", p, &err) < 0, &err, "already activated", "activate at another path");
  expect_error(hcs_layer_destroy(store, "s", false, &err) < 0, &err, "activated at", "destroy while activated");
  expect_error(hcs_layer_prepare(store, "s", "[{\"HostPath\": \"relative\", \"ContainerPath\": \"/data\"}]", &err) < 0,
               &err, "not an absolute path", "prepare with a relative HostPath");
  expect_error(hcs_layer_prepare(store, "s", "[{\"HostPath\": \"/tmp\", \"ContainerPath\": \"/a/../../b\"}]", &err) < 0,
               &err, "..", "prepare with `..`");
  ok(hcs_layer_prepare(store, "s", "[{\"HostPath\": \"/tmp\", \"ContainerPath\": \"/data/tmp\"}]", &err) == 0,
     "prepare: %s", hcs_error_message(err));
  snprintf(p, sizeof p, "%s/dev/pts", mp ? mp : "/nonexistent");
  is_int(access(p, F_OK), 0, "prepare made the mount-point skeleton");
  snprintf(p, sizeof p, "%s/data/tmp", mp ? mp : "/nonexistent");
  is_int(access(p, F_OK), 0, "prepare made the mapped directory's mount point");
  ok(hcs_layer_unprepare(store, "s", &err) == 0, "unprepare");
  snprintf(p, sizeof p, "%s/run/layers/s.json", root);
  is_int(access(p, F_OK), -1, "unprepared at the default path: no state record (the mount is the record)");
  ok(hcs_layer_deactivate(store, "s", &err) == 0, "deactivate");
  ok(hcs_layer_deactivate(store, "s", &err) == 0, "deactivate again: idempotent");
  ok(hcs_layer_get_mount_path(store, "s", &err) == NULL, "no mount path once deactivated");
  has_substr(hcs_error_message(err), "not activated", "error says so");
  hcs_error_release(&err);
  free(mp);
  is_int(t_mounts_under(T), 0, "no mount left after deactivate");

  /* An activation at the default path writes no state: the mount is the
   * record.  A mount there without any record (a process killed right after
   * mounting, before this change) is seen as active and is unmounted. */
  char *mp2 = hcs_layer_activate_path(store, "s", NULL, &err);
  ok(mp2 != NULL, "activate, returning the path: %s", mp2 ? mp2 : hcs_error_message(err));
  snprintf(p, sizeof p, "%s/layers/s/mount", root);
  is_str(mp2, p, "at the default path");
  snprintf(p, sizeof p, "%s/run/layers/s.json", root);
  is_int(access(p, F_OK), -1, "no state record for the default path");
  unlink(p); /* the record-less mount a kill used to leave */
  json_t *ins = inspect("s");
  ok(json_is_true(json_object_get(ins, "Active")), "inspect: active without a record");
  json_decref(ins);
  expect_error(hcs_layer_destroy(store, "s", false, &err) < 0, &err, "activated at",
               "destroy refused without a record");
  ok(hcs_layer_deactivate(store, "s", &err) == 0, "deactivate without a record: %s", hcs_error_message(err));
  is_int(t_mounts_under(T), 0, "the record-less mount is unmounted");
  free(mp2);
  /* a custom mount path can't be derived: it keeps its record */
  snprintf(p, sizeof p, "%s/elsewhere", T);
  mp2 = hcs_layer_activate_path(store, "s", p, &err);
  is_str(mp2, p, "activate at a custom path returns it");
  free(mp2);
  snprintf(p, sizeof p, "%s/run/layers/s.json", root);
  is_int(access(p, F_OK), 0, "a custom mount path is recorded");
  mp2 = hcs_layer_get_mount_path(store, "s", &err);
  snprintf(p, sizeof p, "%s/elsewhere", T);
  is_str(mp2, p, "and found again");
  free(mp2);
  ok(hcs_layer_deactivate(store, "s", &err) == 0, "deactivate the custom path");
  snprintf(p, sizeof p, "%s/run/layers/s.json", root);
  is_int(access(p, F_OK), -1, "its record is gone");
  is_int(t_mounts_under(T), 0, "no mount left");
  /* A scratch layer is destroyed without a look at the other layers (no
   * layer can have it as a parent); a read-only one still checks them. */
  ok(hcs_layer_create_scratch(store, "s2", full, &err) == 0, "a second scratch: %s", hcs_error_message(err));
  ok(hcs_layer_destroy(store, "s", false, &err) == 0, "destroy scratch: %s", hcs_error_message(err));
  is_int(hcs_layer_exists(store, "s2", &err), 1, "the other scratch on the same parent stays");
  expect_error(hcs_layer_destroy(store, "child", true, &err) < 0, &err, "layer `s2` depends on it",
               "its parent is still refused (even forced) while a scratch is on it");
  ok(hcs_layer_destroy(store, "s2", true, &err) == 0, "destroy the second scratch (forced): %s",
     hcs_error_message(err));
  is_int(hcs_layer_exists(store, "s2", &err), 0, "gone");
  expect_error(hcs_layer_destroy(store, "child", false, &err) < 0, &err, "in use", "destroy while referenced");
  is_int(hcs_layer_release(store, "child", &err), 0, "release -> 0");
  expect_error(hcs_layer_release(store, "child", &err) < 0, &err, "no reference", "release below zero");
  ok(hcs_layer_destroy(store, "child", false, &err) == 0, "destroy child");
  ok(hcs_layer_destroy(store, base, false, &err) == 0, "destroy base");
  expect_error(hcs_layer_destroy(store, base, false, &err) < 0, &err, "not found", "destroy a missing layer");

  /* an import killed half-way leaves nothing visible, and is swept */
  {
    snprintf(p, sizeof p, "%s/big.tar.gz", T);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/big && head -c 20000000 /dev/urandom > %s/big/f && tar -C %s/big -czf %s .",
             T, T, T, p);
    ok(system(cmd) == 0, "make a 20 MB layer");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      hcs_layer_import_file(store, p, &(hcs_layer_import_opts_t){.id = "killed", .progress = die_now}, NULL);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the importing process was killed mid-way");
    is_int(hcs_layer_exists(store, "killed", &err), 0, "no layer visible after the kill");
    snprintf(p, sizeof p, "%s/layers/.tmp", root);
    is_int(count_dir(p, "import-"), 2, "its temp dir and lock are left");
    hcs_layer_store_close(store);
    store = hcs_layer_store_open(root, &err);
    is_int(count_dir(p, "import-"), 0, "swept on the next open");
  }

  /* two processes import into one store at once */
  {
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
      char *t = tar_with("conc", i ? "etc/one" : "etc/two", i ? "1" : "2");
      fflush(stdout);
      pids[i] = fork();
      if (pids[i] == 0) {
        hcs_layer_store_t *s2 = hcs_layer_store_open(root, NULL);
        char id[16];
        snprintf(id, sizeof id, "conc%d", i);
        char *got = s2 ? hcs_layer_import_file(s2, t, &(hcs_layer_import_opts_t){.id = id}, NULL) : NULL;
        _exit(got ? 0 : 1);
      }
      free(t);
    }
    int okc = 0;
    for (int i = 0; i < 2; i++) {
      int status = 0;
      waitpid(pids[i], &status, 0);
      okc += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    is_int(okc, 2, "concurrent imports from two processes both succeed");
    ok(hcs_layer_exists(store, "conc0", &err) == 1 && hcs_layer_exists(store, "conc1", &err) == 1, "both layers exist");
    hcs_layer_destroy(store, "conc0", false, &err);
    hcs_layer_destroy(store, "conc1", false, &err);
  }

  /* a chain of 120 layers activates (beyond the one-page option limit) */
  char prev[64] = "";
  int okc = 1;
  for (int i = 1; i <= 120 && okc; i++) {
    char f[64], id[64], c[32];
    snprintf(f, sizeof f, "etc/f%03d", i);
    snprintf(id, sizeof id, "chain-layer-with-a-long-name-%03d", i);
    snprintf(c, sizeof c, "%d\n", i);
    char *t = tar_with("chain", f, c);
    const char *par[] = {prev, NULL};
    char *got =
        hcs_layer_import_file(store, t, &(hcs_layer_import_opts_t){.id = id, .parents = prev[0] ? par : NULL}, &err);
    okc = got != NULL;
    if (!okc) printf("# %s\n", hcs_error_message(err));
    free(got);
    unlink(t);
    free(t);
    snprintf(prev, sizeof prev, "%s", id);
  }
  ok(okc, "import a chain of 120 layers");
  const char *top[] = {prev, NULL};
  ok(hcs_layer_create_scratch(store, "top", top, &err) == 0, "scratch over 120 layers");
  ok(hcs_layer_activate(store, "top", NULL, &err) == 0, "activate 120 layers: %s", hcs_error_message(err));
  mp = hcs_layer_get_mount_path(store, "top", &err);
  snprintf(p, sizeof p, "%s/etc/f001", mp ? mp : "/nonexistent");
  content = t_read_file(p);
  is_str(content, "1\n", "the bottom layer is visible");
  free(content);
  snprintf(p, sizeof p, "%s/etc/f120", mp ? mp : "/nonexistent");
  content = t_read_file(p);
  is_str(content, "120\n", "the top layer is visible");
  free(content);
  free(mp);
  /* the mount(2) fallback of older kernels: short link names fit the page */
  ok(hcs_layer_deactivate(store, "top", &err) == 0, "deactivate the 120-layer chain");
  setenv("HCS_LAYER_MOUNT", "legacy", 1);
  ok(hcs_layer_activate(store, "top", NULL, &err) == 0, "activate 120 layers with mount(2): %s",
     hcs_error_message(err));
  unsetenv("HCS_LAYER_MOUNT");
  mp = hcs_layer_get_mount_path(store, "top", &err);
  snprintf(p, sizeof p, "%s/etc/f001", mp ? mp : "/nonexistent");
  content = t_read_file(p);
  is_str(content, "1\n", "legacy mount: the bottom layer is visible");
  free(content);
  snprintf(p, sizeof p, "%s/etc/f120", mp ? mp : "/nonexistent");
  content = t_read_file(p);
  is_str(content, "120\n", "legacy mount: the top layer is visible");
  free(content);
  free(mp);
  ok(hcs_layer_destroy(store, "top", true, &err) == 0, "forced destroy deactivates: %s", hcs_error_message(err));
  is_int(t_mounts_under(T), 0, "no mount left");

  hcs_layer_store_close(store);
  free(base);
  free(child);
  free(tar1);
  free(tar2);
  is_int(t_rmroot(T), 0, "no mounts left at the end");
  return tap_done();
}
