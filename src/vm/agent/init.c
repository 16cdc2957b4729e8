/* hcs-agent as PID 1: mount the API filesystems, load the initramfs's
 * kernel modules in modules.dep order, configure lo and eth0 from `ip=`,
 * find the virtio-serial port and the ACPI power button, then serve.
 * Static, no Lua, no dynamic loader: it is the whole userland of the guest
 * besides busybox. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

void agent_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

int agent_mkdir_p(const char *path, unsigned mode) {
  char buf[4096];
  if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) return errno = ENAMETOOLONG, -1;
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || !*p) {
      char c = *p;
      *p = 0;
      if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
      if (!c) return 0;
      *p = c;
    }
  }
}

static void mount_api(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  agent_mkdir_p(dst, 0755);
  if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
    agent_log("hcs-agent: mount %s on `%s`: %s\n", type, dst, strerror(errno));
}

/* --- kernel modules ---------------------------------------------------------- */

struct mod {
  char *path; /* relative to the modules directory */
  char *deps; /* space-separated, as in modules.dep */
  int state;  /* 0 not loaded, 1 loading, 2 done */
};

static void load_module(struct mod *mods, size_t n, struct mod *m, const char *dir) {
  if (m->state) return;
  m->state = 1;
  /* modules.dep lists every dependency, the deepest last: load in reverse */
  char *deps = strdup(m->deps), *save = NULL, *list[256];
  size_t k = 0;
  for (char *t = strtok_r(deps, " \t", &save); t && k < 256; t = strtok_r(NULL, " \t", &save))
    list[k++] = t;
  while (k--)
    for (size_t i = 0; i < n; i++)
      if (strcmp(mods[i].path, list[k]) == 0) load_module(mods, n, &mods[i], dir);
  free(deps);
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, m->path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t len = strlen(m->path);
  int flags = len > 3 && strcmp(m->path + len - 3, ".ko") != 0 ? MODULE_INIT_COMPRESSED_FILE : 0;
  if (fd < 0)
    agent_log("hcs-agent: open module `%s`: %s\n", path, strerror(errno));
  else if (syscall(SYS_finit_module, fd, "", flags) < 0 && errno != EEXIST)
    agent_log("hcs-agent: load module `%s`: %s\n", path, strerror(errno));
  if (fd >= 0) close(fd);
  m->state = 2;
}

/* Every module of the initramfs's modules.dep, dependencies first. */
static void load_modules(void) {
  struct utsname u;
  uname(&u);
  char dir[300], dep[400];
  snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
  snprintf(dep, sizeof(dep), "%s/modules.dep", dir);
  FILE *f = fopen(dep, "re");
  if (!f) {
    agent_log("hcs-agent: no modules for kernel %s (%s): %s\n", u.release, dep, strerror(errno));
    return;
  }
  struct mod *mods = NULL;
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    line[strcspn(line, "\n")] = 0;
    char *colon = strchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    mods = realloc(mods, (n + 1) * sizeof(*mods));
    mods[n++] = (struct mod){strdup(line), strdup(colon + 1), 0};
  }
  free(line);
  fclose(f);
  for (size_t i = 0; i < n; i++)
    load_module(mods, n, &mods[i], dir);
  for (size_t i = 0; i < n; i++)
    free(mods[i].path), free(mods[i].deps);
  free(mods);
}

/* --- network ----------------------------------------------------------------- */

static void if_up(int s, const char *ifname) {
  if (agent_if_up(s, ifname) < 0) agent_log("hcs-agent: bring up %s: %s\n", ifname, strerror(errno));
}

/* ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>; only
 * static addresses (the kernel's own autoconfiguration ran before the
 * virtio_net module was loaded, so it could not do it). */
static void configure_network(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  if_up(s, "lo");
  char cmdline[4096] = "";
  FILE *f = fopen("/proc/cmdline", "re");
  if (f) {
    if (!fgets(cmdline, sizeof(cmdline), f)) cmdline[0] = 0;
    fclose(f);
  }
  char *ip = NULL, *save = NULL;
  for (char *t = strtok_r(cmdline, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
    if (strncmp(t, "ip=", 3) == 0) ip = t + 3;
  if (!ip || !strchr(ip, ':')) {
    close(s);
    return;
  }
  char *field[7] = {0};
  for (int i = 0; i < 7; i++) {
    field[i] = ip;
    if (!ip) break;
    char *c = strchr(ip, ':');
    if (c) *c = 0;
    ip = c ? c + 1 : NULL;
  }
  const char *dev = field[5] && *field[5] ? field[5] : "eth0";
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
  bool has_addr = ioctl(s, SIOCGIFADDR, &ifr) == 0;
  if (!has_addr && field[0] && *field[0]) {
    if (agent_if_set(s, dev, SIOCSIFADDR, field[0]) < 0)
      agent_log("hcs-agent: set address %s on %s: %s\n", field[0], dev, strerror(errno));
    if (field[3] && *field[3] && agent_if_set(s, dev, SIOCSIFNETMASK, field[3]) < 0)
      agent_log("hcs-agent: set netmask %s on %s: %s\n", field[3], dev, strerror(errno));
    if_up(s, dev);
    if (field[2] && *field[2] && agent_add_default_route(s, dev, field[2]) < 0)
      agent_log("hcs-agent: add default route via %s: %s\n", field[2], strerror(errno));
  }
  if (field[4] && *field[4]) sethostname(field[4], strlen(field[4]));
  close(s);
}

/* --- devices ------------------------------------------------------------------- */

/* Read "MAJ:MIN" from a sysfs dev file and make the node if devtmpfs did not. */
static int ensure_node(const char *sysdev, const char *node) {
  struct stat st;
  if (stat(node, &st) == 0) return 0;
  FILE *f = fopen(sysdev, "re");
  unsigned maj, min;
  if (!f) return -1;
  int ok = fscanf(f, "%u:%u", &maj, &min) == 2;
  fclose(f);
  if (!ok) return errno = EINVAL, -1;
  return mknod(node, S_IFCHR | 0600, makedev(maj, min));
}

int agent_open_port(int timeout_ms) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[512], name[256] = "";
      snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
      FILE *f = fopen(p, "re");
      if (!f) continue;
      if (!fgets(name, sizeof(name), f)) name[0] = 0;
      fclose(f);
      name[strcspn(name, "\n")] = 0;
      if (strcmp(name, AGENT_PORT_NAME) != 0) continue;
      char node[300];
      snprintf(node, sizeof(node), "/dev/%s", e->d_name);
      snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/dev", e->d_name);
      if (ensure_node(p, node) < 0) agent_log("hcs-agent: make `%s`: %s\n", node, strerror(errno));
      agent_mkdir_p("/dev/virtio-ports", 0755);
      char rel[300];
      snprintf(rel, sizeof(rel), "../%s", e->d_name);
      if (symlink(rel, "/dev/virtio-ports/" AGENT_PORT_NAME) < 0 && errno != EEXIST)
        agent_log("hcs-agent: link the port: %s\n", strerror(errno));
      closedir(d);
      int fd = open(node, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd < 0) agent_log("hcs-agent: open `%s`: %s\n", node, strerror(errno));
      return fd;
    }
    if (d) closedir(d);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) return errno = ENODEV, -1;
    usleep(10000);
  }
}

int agent_open_power_button(void) {
  DIR *d = opendir("/sys/class/input");
  struct dirent *e;
  int fd = -1;
  while (d && fd < 0 && (e = readdir(d))) {
    if (strncmp(e->d_name, "event", 5) != 0) continue;
    char p[512], name[256] = "";
    snprintf(p, sizeof(p), "/sys/class/input/%s/device/name", e->d_name);
    FILE *f = fopen(p, "re");
    if (!f) continue;
    if (!fgets(name, sizeof(name), f)) name[0] = 0;
    fclose(f);
    if (strncmp(name, "Power Button", 12) != 0) continue;
    char node[300];
    snprintf(node, sizeof(node), "/dev/input/%s", e->d_name);
    snprintf(p, sizeof(p), "/sys/class/input/%s/dev", e->d_name);
    agent_mkdir_p("/dev/input", 0755);
    ensure_node(p, node);
    fd = open(node, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  }
  if (d) closedir(d);
  return fd;
}

int agent_mount_9p(const char *tag, const char *target, bool readonly, const char **what) {
  *what = "create mount point for";
  if (agent_mkdir_p(target, 0755) < 0) return -1;
  *what = "mount";
  return mount(tag, target, "9p", readonly ? MS_RDONLY : 0, "trans=virtio,version=9p2000.L,msize=262144");
}

void agent_poweroff(void) {
  sync();
  kill(-1, SIGTERM);
  for (int i = 0; i < 100; i++) { /* up to a second for the processes to go */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    if (kill(-1, 0) < 0 && errno == ESRCH) break;
    usleep(10000);
  }
  kill(-1, SIGKILL);
  sync();
  reboot(RB_POWER_OFF);
  _exit(0);
}

void agent_init_system(void) {
  mount_api("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_api("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_api("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_api("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  if (symlink("pts/ptmx", "/dev/ptmx") < 0 && errno == EEXIST) {
    /* devtmpfs's ptmx would open the initial instance: point it at ours */
    unlink("/dev/ptmx");
    if (symlink("pts/ptmx", "/dev/ptmx") < 0) agent_log("hcs-agent: link /dev/ptmx: %s\n", strerror(errno));
  }
  mount_api("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_api("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_api("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  struct timespec t0, t1;
  clock_gettime(CLOCK_BOOTTIME, &t0);
  load_modules();
  clock_gettime(CLOCK_BOOTTIME, &t1);
  agent_log("hcs-agent: started %ld.%03ld s after boot; modules loaded in %ld ms\n", (long)t0.tv_sec,
            t0.tv_nsec / 1000000, (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
  configure_network();
  struct stat st;
  if (stat("/bin/sh", &st) < 0 && stat("/bin/busybox", &st) == 0) {
    /* the guest shell tools: busybox's applets as links */
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/busybox", "busybox", "--install", "-s", (char *)NULL);
      _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
  }
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  if (getpid() != 1) {
    fprintf(stderr, "hcs-agent: the hcs guest agent runs as PID 1 of a VM's initramfs (hcs vm initrd)\n");
    return 2;
  }
  setsid();
  agent_init_system();
  int port = agent_open_port(30000);
  if (port < 0) {
    agent_log("hcs-agent: no virtio-serial port named %s: %s\n", AGENT_PORT_NAME, strerror(errno));
    agent_poweroff();
  }
  int power = agent_open_power_button();
  if (power < 0) agent_log("hcs-agent: no ACPI power button: shutdown only through the agent\n");
  struct timespec up;
  clock_gettime(CLOCK_BOOTTIME, &up);
  agent_log("hcs-agent: ready %ld.%03ld s after boot\n", (long)up.tv_sec, up.tv_nsec / 1000000);
  agent_serve(port, power);
  agent_poweroff();
}
