/* Unit tests for the registry client's pure parts: references, loopback
 * detection, base64, the credentials files (auth.json, Docker's config),
 * the insecure-registries file. */
#include <sys/stat.h>

#include "core/util.h"
#include "registry/internal.h"
#include "tap.h"

static void check_ref(const char *text, const char *reg, const char *repo, const char *tag, const char *digest) {
  struct reg_ref r;
  hcs_error_t err = NULL;
  int rc = reg_ref_parse(text, &r, &err);
  ok(rc == 0, "parse `%s`%s%s", text, rc ? ": " : "", rc ? hcs_error_message(err) : "");
  if (rc == 0) {
    is_str(r.registry, reg, "`%s`: registry", text);
    is_str(r.repo, repo, "`%s`: repository", text);
    ok(tag ? (r.tag && strcmp(r.tag, tag) == 0) : r.tag == NULL, "`%s`: tag %s", text, tag ? tag : "(none)");
    ok(digest ? (r.digest && strcmp(r.digest, digest) == 0) : r.digest == NULL, "`%s`: digest", text);
  }
  reg_ref_free(&r);
  hcs_error_release(&err);
}

static void check_bad_ref(const char *text, const char *why) {
  struct reg_ref r;
  hcs_error_t err = NULL;
  ok(reg_ref_parse(text, &r, &err) < 0, "refuse `%s`", text);
  has_substr(hcs_error_message(err), why, "`%s`: says why", text);
  hcs_error_release(&err);
}

static void test_refs(void) {
  const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  check_ref("busybox", "docker.io", "library/busybox", "latest", NULL);
  check_ref("user/app:1.0", "docker.io", "user/app", "1.0", NULL);
  check_ref("127.0.0.1:5000/hcs/test:v1", "127.0.0.1:5000", "hcs/test", "v1", NULL);
  check_ref("localhost/x", "localhost", "x", "latest", NULL);
  check_ref("quay.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "quay.io",
            "org/img", NULL, d);
  check_ref("reg.example:443/a/b/c:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "reg.example:443", "a/b/c", "t", d);
  check_bad_ref("", "empty");
  check_bad_ref("Busybox", "lowercase");
  check_bad_ref("host:5000/a/../b", "lowercase");
  check_bad_ref("a@sha256:12", "sha256:<64 hex>");
  check_bad_ref("a:.hidden", "bad tag");
  ok(reg_host_is_loopback("127.0.0.1:5000") && reg_host_is_loopback("localhost") && reg_host_is_loopback("[::1]:5000"),
     "loopback registries");
  ok(!reg_host_is_loopback("10.0.0.1:5000") && !reg_host_is_loopback("docker.io") &&
         !reg_host_is_loopback("127example.com"),
     "other registries are not loopback");
}

static void test_base64(void) {
  char *b = reg_base64("hcs:s3cret", 10);
  is_str(b, "aGNzOnMzY3JldA==", "base64");
  size_t n = 0;
  char *back = reg_unbase64(b, &n);
  is_str(back, "hcs:s3cret", "and back");
  is_int(n, 10, "decoded length without padding");
  ok(reg_unbase64("abc", NULL) == NULL, "malformed base64 refused");
  free(b);
  free(back);
}

static void test_auth_files(void) {
  char tmpl[] = "/tmp/hcs-test.XXXXXX";
  const char *dir = mkdtemp(tmpl);
  ok(dir != NULL, "temporary directory");
  if (!dir) return;
  char *auth = hcs_xasprintf("%s/auth.json", dir);
  char *home = hcs_xasprintf("%s/home", dir);
  char *docker = hcs_xasprintf("%s/home/.docker/config.json", dir);
  hcs_registry_opts_t o;
  hcs_registry_opts_init(&o);
  o.auth_file = auth;
  hcs_error_t err = NULL;
  ok(reg_auth_lookup("127.0.0.1:5000", &o) == NULL, "no file: no credentials");
  const char *text = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"aGNzOnMzY3JldA==\"},\"bad\":{\"auth\":\"@@@@\"}}}";
  ok(hcs_write_file_atomic(auth, text, strlen(text), 0600, &err) == 0, "write auth.json");
  char *up = reg_auth_lookup("127.0.0.1:5000", &o);
  is_str(up, "hcs:s3cret", "credentials from auth.json");
  free(up);
  ok(reg_auth_lookup("bad", &o) == NULL, "a malformed entry is ignored");
  ok(reg_auth_lookup("other:1", &o) == NULL, "another registry has none");
  /* Docker's config.json is read when the containers file has no entry */
  hcs_registry_opts_init(&o);
  setenv("HOME", home, 1);
  setenv("REGISTRY_AUTH_FILE", auth, 1);
  char *dotdocker = hcs_xasprintf("%s/home/.docker", dir);
  ok(hcs_mkdir_p(dotdocker, 0700, &err) == 0, "mkdir .docker");
  free(dotdocker);
  const char *dtext = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dTpw\"}}}";
  ok(hcs_write_file_atomic(docker, dtext, strlen(dtext), 0600, &err) == 0, "write config.json");
  up = reg_auth_lookup("docker.io", &o);
  is_str(up, "u:p", "Docker Hub credentials from ~/.docker/config.json");
  free(up);
  /* logout edits the file and keeps its mode */
  o.auth_file = auth;
  ok(hcs_registry_logout("127.0.0.1:5000", &o, &err) == 0, "logout");
  ok(reg_auth_lookup("127.0.0.1:5000", &o) == NULL, "the entry is gone");
  struct stat st;
  ok(stat(auth, &st) == 0 && (st.st_mode & 0777) == 0600, "auth.json stays 0600");
  ok(hcs_registry_logout("127.0.0.1:5000", &o, &err) < 0 && hcs_error_status(err) == ENOENT, "logout twice: ENOENT");
  hcs_error_release(&err);
  /* the insecure list */
  char *conf = hcs_xasprintf("%s/registries.json", dir);
  const char *ctext = "{\"insecure\":[\"reg.lan:5000\"]}";
  ok(hcs_write_file_atomic(conf, ctext, strlen(ctext), 0644, &err) == 0, "write registries.json");
  o.registries_conf = conf;
  ok(reg_insecure_listed("reg.lan:5000", &o), "a listed registry is insecure");
  ok(!reg_insecure_listed("reg.lan:5001", &o), "another is not");
  unsetenv("REGISTRY_AUTH_FILE");
  hcs_rm_rf(dir, NULL);
  free(auth);
  free(home);
  free(docker);
  free(conf);
}

int main(void) {
  test_refs();
  test_base64();
  test_auth_files();
  return tap_done();
}
