/* Virtual disks over qemu-img (the VHD analogue): create (raw, qcow2, a
 * qcow2 on a backing file), resize, inspect.  qemu-img runs with an argv
 * (no shell); what it says on stderr becomes the error's reason. */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/crash.h"
#include "hcs/disk.h"
#include "vm/vm.h"

static const char *qemu_img(void) {
  const char *q = getenv("HCS_QEMU_IMG");
  return q && *q ? q : "qemu-img";
}

/* Run qemu-img; its stdout in *out (may be NULL); `keep` >= 0 is an fd
 * it inherits (the unnamed file it writes).  On failure the error carries
 * its last stderr line. */
static int run_img(char *const argv[], char **out, int keep, hcs_error_t *err) {
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) < 0) return hcs_error_make(err, errno, "pipe");
  if (pipe2(pe, O_CLOEXEC) < 0) {
    close(po[0]), close(po[1]);
    return hcs_error_make(err, errno, "pipe");
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
    return hcs_error_make(err, errno, "fork");
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0), dup2(po[1], 1), dup2(pe[1], 2);
    if (keep >= 0) fcntl(keep, F_SETFD, 0);
    execvp(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(po[1]), close(pe[1]);
  char *bufs[2] = {NULL, NULL};
  size_t lens[2] = {0, 0};
  struct pollfd p[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !p[i].revents) continue;
      char b[4096];
      ssize_t n = read(p[i].fd, b, sizeof b);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        open_fds--;
        continue;
      }
      if (lens[i] < (1u << 20)) {
        bufs[i] = hcs_xrealloc(bufs[i], lens[i] + (size_t)n + 1);
        memcpy(bufs[i] + lens[i], b, (size_t)n);
        lens[i] += (size_t)n;
        bufs[i][lens[i]] = '\0';
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (p[i].fd >= 0) close(p[i].fd);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  cleanup_free char *errtext = bufs[1];
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    free(bufs[0]);
    char *msg = errtext ? errtext : "no message";
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
      msg[--n] = '\0';
    char *last = strrchr(msg, '\n');
    return hcs_error_make(err, WIFEXITED(st) && WEXITSTATUS(st) == 127 ? ENOENT : EIO, "%s: %s", argv[0],
                          last ? last + 1 : msg);
  }
  if (out)
    *out = bufs[0] ? bufs[0] : hcs_xstrdup("");
  else
    free(bufs[0]);
  return 0;
}

static bool valid_format(const char *f) { return f && (strcmp(f, "raw") == 0 || strcmp(f, "qcow2") == 0); }

/* The format of an existing image, probed (never used to open a guest's
 * disk: see hcs_vm_disk_parse). */
static char *probe_format(const char *path, hcs_error_t *err) {
  char *argv[] = {(char *)qemu_img(), "info", "--output=json", "-U", (char *)path, NULL};
  cleanup_free char *out = NULL;
  if (run_img(argv, &out, -1, err) < 0) return NULL;
  cleanup_json json_t *j = json_loads(out, 0, NULL);
  const char *f = json_string_value(json_object_get(j, "format"));
  if (f == NULL) {
    hcs_error_make(err, EIO, "inspect `%s`: qemu-img gave no format", path);
    return NULL;
  }
  return hcs_xstrdup(f);
}

int hcs_disk_create(const char *path, const char *format, uint64_t size, const char *backing, hcs_error_t *err) {
  if (!valid_format(format))
    return hcs_error_make(err, EINVAL, "create disk `%s`: format `%s`: expected raw or qcow2", path,
                          format ? format : "");
  if (backing && strcmp(format, "qcow2") != 0)
    return hcs_error_make(err, EINVAL, "create disk `%s`: a backing file needs the qcow2 format", path);
  if (size == 0 && backing == NULL) return hcs_error_make(err, EINVAL, "create disk `%s`: a size is needed", path);
  if (access(path, F_OK) == 0) return hcs_error_make(err, EEXIST, "create disk `%s`: it exists", path);
  cleanup_free char *bfmt = NULL, *babs = NULL;
  if (backing) {
    /* qcow2 records the backing path: absolute, so the disk works from
     * any working directory. */
    babs = realpath(backing, NULL);
    if (babs == NULL) return hcs_error_make(err, errno, "create disk `%s`: backing file `%s`", path, backing);
    if ((bfmt = probe_format(babs, err)) == NULL) return hcs_error_wrap(err, "create disk `%s`", path);
  }
  /* qemu-img writes an unnamed file (O_TMPFILE in the target's directory,
   * reached as /proc/self/fd/N, which it inherits), linked under its name
   * once complete: a create killed mid-way leaves nothing behind, and no
   * reader ever sees half a disk. */
  cleanup_free char *dir = hcs_dir_of(path);
  cleanup_close int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) return hcs_error_make(err, errno, "create disk `%s`: create a file in `%s`", path, dir);
  if (fd < 3) { /* the child's stdio would replace it */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    if ((fd = high) < 0) return hcs_error_make(err, errno, "create disk `%s`: dup", path);
  }
  cleanup_free char *tmp = hcs_xasprintf("/proc/self/fd/%d", fd);
  cleanup_free char *sz = hcs_xasprintf("%llu", (unsigned long long)size);
  char *argv[12];
  int n = 0;
  argv[n++] = (char *)qemu_img();
  argv[n++] = "create";
  argv[n++] = "-q";
  argv[n++] = "-f";
  argv[n++] = (char *)format;
  if (babs) {
    argv[n++] = "-b";
    argv[n++] = babs;
    argv[n++] = "-F";
    argv[n++] = bfmt;
  }
  argv[n++] = tmp;
  if (size) argv[n++] = sz;
  argv[n] = NULL;
  if (run_img(argv, NULL, fd, err) < 0) return hcs_error_wrap(err, "create disk `%s`", path);
  hcs_pause_point("disk create: written");
  /* A raw disk is sparse; qcow2 metadata is small: both synced before
   * they get their name.  linkat never replaces an existing file. */
  if (fsync(fd) < 0) return hcs_error_make(err, errno, "create disk `%s`: fsync", path);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
    return hcs_error_make(err, errno, "create disk `%s`", path);
  hcs_fsync_dir(dir, NULL);
  return 0;
}

int hcs_disk_resize(const char *path, uint64_t size, bool shrink, hcs_error_t *err) {
  if (size == 0) return hcs_error_make(err, EINVAL, "resize disk `%s`: a size is needed", path);
  cleanup_free char *fmt = probe_format(path, err);
  if (fmt == NULL) return hcs_error_wrap(err, "resize disk `%s`", path);
  if (!valid_format(fmt))
    return hcs_error_make(err, EINVAL, "resize disk `%s`: format `%s` is not raw or qcow2", path, fmt);
  cleanup_free char *sz = hcs_xasprintf("%llu", (unsigned long long)size);
  char *argv[] = {(char *)qemu_img(),         "resize",           "-q", "-f", fmt, shrink ? "--shrink" : (char *)path,
                  shrink ? (char *)path : sz, shrink ? sz : NULL, NULL};
  if (run_img(argv, NULL, -1, err) < 0) return hcs_error_wrap(err, "resize disk `%s`", path);
  return 0;
}

char *hcs_disk_inspect(const char *path, hcs_error_t *err) {
  struct stat st;
  if (stat(path, &st) < 0) {
    hcs_error_make(err, errno, "inspect disk `%s`", path);
    return NULL;
  }
  char *argv[] = {(char *)qemu_img(), "info", "--output=json", "-U", (char *)path, NULL};
  cleanup_free char *out = NULL;
  if (run_img(argv, &out, -1, err) < 0) {
    hcs_error_wrap(err, "inspect disk `%s`", path);
    return NULL;
  }
  cleanup_json json_t *j = json_loads(out, 0, NULL);
  if (!json_is_object(j)) {
    hcs_error_make(err, EIO, "inspect disk `%s`: qemu-img printed no JSON", path);
    return NULL;
  }
  cleanup_json json_t *o =
      json_pack("{s:s,s:O?,s:O?,s:O?}", "Path", path, "Format", json_object_get(j, "format"), "VirtualSize",
                json_object_get(j, "virtual-size"), "ActualSize", json_object_get(j, "actual-size"));
  json_t *b = json_object_get(j, "full-backing-filename");
  if (b == NULL) b = json_object_get(j, "backing-filename");
  if (b) json_object_set(o, "BackingFile", b);
  if (json_object_get(j, "backing-filename-format"))
    json_object_set(o, "BackingFormat", json_object_get(j, "backing-filename-format"));
  if (json_object_get(j, "dirty-flag")) json_object_set(o, "Dirty", json_object_get(j, "dirty-flag"));
  return hcs_json_dumps(o);
}
