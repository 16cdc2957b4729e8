/* Plan9 shares added to a running VM, in the guest: the host binds each
 * under its `hcs-shares` 9p export (src/vm/share.c), which the agent mounts
 * on /run/hcs-shares when a share is first used and unmounts when the last
 * one goes (QEMU refuses to save a VM while a 9p export is mounted in the
 * guest, so an idle export stays unmounted). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "agent.h"

#define SHARES_TAG "hcs-shares"
#define SHARES_DIR "/run/hcs-shares"
#define OPTS "trans=virtio,version=9p2000.L,msize=262144"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 3;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
}

/* Call fn for each mount of the hcs-shares export (its root within the
 * export and its mount point); the count. */
static int each_share_mount(void (*fn)(const char *root, const char *point, void *arg), void *arg) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return -1;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char root[1024], point[1024], type[64], source[256];
    char *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*d %*d %*s %1023s %1023s", root, point) != 2 ||
        sscanf(dash + 3, "%63s %255s", type, source) != 2)
      continue;
    if (strcmp(type, "9p") != 0 || strcmp(source, SHARES_TAG) != 0) continue;
    unescape(root);
    unescape(point);
    n++;
    if (fn) fn(root, point, arg);
  }
  fclose(f);
  return n;
}

static void is_export(const char *root, const char *point, void *arg) {
  if (strcmp(root, "/") == 0 && strcmp(point, SHARES_DIR) == 0) *(bool *)arg = true;
}

static bool valid_name(const char *s) {
  return s[0] && strlen(s) < 64 && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..") && strcmp(s, SHARES_TAG);
}

int agent_mount_share(const char *name, const char *target, bool readonly, const char **what) {
  *what = "find hot-added share";
  if (!valid_name(name)) return errno = EINVAL, -1;
  bool mounted = false;
  each_share_mount(is_export, &mounted);
  if (!mounted) {
    *what = "mount the " SHARES_TAG " export for";
    if (agent_mkdir_p(SHARES_DIR, 0700) < 0 || mount(SHARES_TAG, SHARES_DIR, "9p", 0, OPTS) < 0) return -1;
  }
  char src[512];
  snprintf(src, sizeof src, SHARES_DIR "/%s", name);
  struct stat st;
  *what = "find hot-added share";
  if (lstat(src, &st) < 0) return -1;
  if (!S_ISDIR(st.st_mode)) return errno = ENOTDIR, -1;
  *what = "create mount point for";
  if (agent_mkdir_p(target, 0755) < 0) return -1;
  *what = "bind-mount hot-added share";
  if (mount(src, target, NULL, MS_BIND, NULL) < 0) return -1;
  if (readonly && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
    int e = errno;
    umount2(target, MNT_DETACH);
    *what = "make read-only hot-added share";
    return errno = e, -1;
  }
  return 0;
}

struct unmount_ctx {
  const char *name;
  char **points;
  size_t n;
};

static void collect(const char *root, const char *point, void *arg) {
  struct unmount_ctx *c = arg;
  size_t l = strlen(c->name);
  if (root[0] != '/' || strncmp(root + 1, c->name, l) != 0 || (root[1 + l] != '\0' && root[1 + l] != '/')) return;
  char **p = realloc(c->points, (c->n + 1) * sizeof *p);
  if (!p) return;
  c->points = p;
  c->points[c->n++] = strdup(point);
}

int agent_unmount_share(const char *name, const char **what) {
  *what = "find hot-added share";
  if (!valid_name(name)) return errno = EINVAL, -1;
  struct unmount_ctx c = {.name = name};
  each_share_mount(collect, &c);
  int rc = 0;
  /* The newest first: a mount on top of another goes before it. */
  for (size_t i = c.n; i-- > 0;) {
    if (c.points[i] && umount2(c.points[i], MNT_DETACH) < 0 && errno != EINVAL && rc == 0) {
      *what = "unmount hot-added share";
      rc = -1;
    }
    free(c.points[i]);
  }
  free(c.points);
  if (rc < 0) return -1;
  /* The export goes with its last user (a save needs it unmounted). */
  bool mounted = false;
  int n = each_share_mount(is_export, &mounted);
  if (mounted && n == 1) umount2(SHARES_DIR, MNT_DETACH);
  return 0;
}
