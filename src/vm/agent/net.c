/* The agent's network configuration: interface flags and IPv4 addresses
 * through the classic ioctls (no netlink library in the static agent), for
 * the first adapter from `ip=` at boot (init.c) and for a hot-added adapter
 * on the host's "configure_interface" request.  That request runs in a
 * child of the agent (agent_configure_interface_start): finding the link
 * may take seconds while the guest's kernel probes the new device, and the
 * agent's loop keeps relaying every other process meanwhile. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

int agent_if_set(int s, const char *ifname, unsigned long req, const char *addr) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) return errno = EINVAL, -1;
  return ioctl(s, req, &ifr);
}

int agent_if_up(int s, const char *ifname) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return -1;
  ifr.ifr_flags |= IFF_UP;
  return ioctl(s, SIOCSIFFLAGS, &ifr);
}

int agent_add_default_route(int s, const char *ifname, const char *gateway) {
  struct rtentry rt = {0};
  struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway, *dst = (struct sockaddr_in *)&rt.rt_dst,
                     *mask = (struct sockaddr_in *)&rt.rt_genmask;
  gw->sin_family = dst->sin_family = mask->sin_family = AF_INET;
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = (char *)ifname;
  if (inet_pton(AF_INET, gateway, &gw->sin_addr) != 1) return errno = EINVAL, -1;
  return ioctl(s, SIOCADDRT, &rt);
}

/* /proc/net/route has a default route (destination and mask 0). */
static bool have_default_route(void) {
  FILE *f = fopen("/proc/net/route", "re");
  if (!f) return false;
  char line[512];
  bool found = false;
  if (!fgets(line, sizeof(line), f)) line[0] = 0; /* the header */
  while (!found && fgets(line, sizeof(line), f)) {
    char dev[64];
    unsigned long dst, gw, flags, mask;
    if (sscanf(line, "%63s %lx %lx %lx %*d %*d %*d %lx", dev, &dst, &gw, &flags, &mask) == 5 && dst == 0 && mask == 0)
      found = true;
  }
  fclose(f);
  return found;
}

/* The name of the link whose address is `mac` (case-insensitive), or -1. */
static int find_link(const char *mac, char *name, size_t cap) {
  DIR *d = opendir("/sys/class/net");
  struct dirent *e;
  int rc = -1;
  while (d && rc < 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[512], addr[64] = "";
    snprintf(path, sizeof(path), "/sys/class/net/%s/address", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f) continue;
    if (!fgets(addr, sizeof(addr), f)) addr[0] = 0;
    fclose(f);
    addr[strcspn(addr, "\n")] = 0;
    if (strcasecmp(addr, mac) == 0) rc = snprintf(name, cap, "%s", e->d_name) < (int)cap ? 0 : -1;
  }
  if (d) closedir(d);
  return rc;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The child's work: 0, or -1 with errno and `why`. */
static int configure(const char *mac, const char *address, int prefix, const char *gateway, int timeout_ms,
                     char *ifname, size_t ifcap, char *why, size_t whycap) {
  int64_t deadline = now_ms() + timeout_ms;
  while (find_link(mac, ifname, ifcap) < 0) {
    if (now_ms() >= deadline) {
      snprintf(why, whycap, "no link with MAC %s appeared within %d ms", mac, timeout_ms);
      return errno = ENODEV, -1;
    }
    usleep(50 * 1000);
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return snprintf(why, whycap, "socket"), -1;
  struct in_addr m = {htonl(prefix ? 0xffffffffu << (32 - prefix) : 0)};
  char mask[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &m, mask, sizeof(mask));
  int rc = -1;
  if (agent_if_set(s, ifname, SIOCSIFADDR, address) < 0)
    snprintf(why, whycap, "set address %s on %s (MAC %s)", address, ifname, mac);
  else if (agent_if_set(s, ifname, SIOCSIFNETMASK, mask) < 0)
    snprintf(why, whycap, "set netmask %s on %s (MAC %s)", mask, ifname, mac);
  else if (agent_if_up(s, ifname) < 0)
    snprintf(why, whycap, "bring up %s (MAC %s)", ifname, mac);
  else if (gateway && !have_default_route() && agent_add_default_route(s, ifname, gateway) < 0)
    snprintf(why, whycap, "add a default route via %s on %s (MAC %s)", gateway, ifname, mac);
  else
    rc = 0;
  int e = errno;
  close(s);
  errno = e;
  return rc;
}

struct job {
  struct job *next;
  pid_t pid;
  int fd; /* the child's result */
  json_t *seq;
  char mac[32];
};
static struct job *jobs;

struct result {
  int errnum; /* -1: ok */
  char text[400];
};

/* Check the request, fork the child that does it; the answer is sent when
 * the child is reaped (agent_configure_interface_reaped). */
void agent_configure_interface_start(json_t *seq, json_t *req) {
  const char *mac = json_string_value(json_object_get(req, "mac"));
  const char *address = json_string_value(json_object_get(req, "address"));
  const char *gateway = json_string_value(json_object_get(req, "gateway"));
  json_t *prefixv = json_object_get(req, "prefix"), *timeoutv = json_object_get(req, "timeout_ms");
  struct in_addr a;
  unsigned b[6];
  char end;
  if (!mac || strlen(mac) != 17 ||
      sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6)
    return agent_reply_error(seq, 0, "configure interface: `mac` must be a MAC address (xx:xx:xx:xx:xx:xx)");
  if (!address || inet_pton(AF_INET, address, &a) != 1)
    return agent_reply_error(seq, 0, "configure interface %s: `address` must be an IPv4 address", mac);
  if (!json_is_integer(prefixv) || json_integer_value(prefixv) < 0 || json_integer_value(prefixv) > 32)
    return agent_reply_error(seq, 0, "configure interface %s: `prefix` must be an integer from 0 to 32", mac);
  if (gateway && inet_pton(AF_INET, gateway, &a) != 1)
    return agent_reply_error(seq, 0, "configure interface %s: `gateway` must be an IPv4 address", mac);
  json_int_t timeout = json_is_integer(timeoutv) ? json_integer_value(timeoutv) : 10000;
  if (timeout < 0 || timeout > 600000)
    return agent_reply_error(seq, 0, "configure interface %s: `timeout_ms` must be from 0 to 600000", mac);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return agent_reply_error(seq, errno, "configure interface %s: pipe", mac);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return agent_reply_error(seq, e, "configure interface %s: fork", mac);
  }
  if (pid == 0) {
    /* Only the result pipe: a copy of a process's stdin pipe here would
     * hold back its end of file while the link is waited for. */
    if (p[1] > 3) syscall(SYS_close_range, 3U, (unsigned)p[1] - 1, 0U);
    syscall(SYS_close_range, (unsigned)p[1] + 1, ~0U, 0U);
    struct result r = {-1, ""};
    char ifname[IFNAMSIZ + 1] = "";
    if (configure(mac, address, (int)json_integer_value(prefixv), gateway, (int)timeout, ifname, sizeof(ifname), r.text,
                  sizeof(r.text)) < 0)
      r.errnum = errno;
    else
      snprintf(r.text, sizeof(r.text), "%s", ifname);
    ssize_t w = write(p[1], &r, sizeof(r)); /* one write below PIPE_BUF: whole or nothing */
    _exit(w == (ssize_t)sizeof(r) ? 0 : 1);
  }
  close(p[1]);
  struct job *j = calloc(1, sizeof(*j));
  if (!j) {
    agent_log("hcs-agent: out of memory\n");
    abort();
  }
  j->pid = pid;
  j->fd = p[0];
  j->seq = json_incref(seq);
  snprintf(j->mac, sizeof(j->mac), "%s", mac);
  j->next = jobs;
  jobs = j;
}

bool agent_configure_interface_reaped(pid_t pid) {
  for (struct job **jp = &jobs; *jp; jp = &(*jp)->next) {
    struct job *j = *jp;
    if (j->pid != pid) continue;
    struct result r;
    ssize_t n = read(j->fd, &r, sizeof(r));
    r.text[sizeof(r.text) - 1] = 0;
    if (n != (ssize_t)sizeof(r))
      agent_reply_error(j->seq, 0, "configure interface %s: the helper died", j->mac);
    else if (r.errnum >= 0)
      agent_reply_error(j->seq, r.errnum, "configure interface: %s", r.text);
    else
      agent_send_json(json_pack("{s:O?,s:b,s:s}", "seq", j->seq, "ok", 1, "name", r.text));
    close(j->fd);
    json_decref(j->seq);
    *jp = j->next;
    free(j);
    return true;
  }
  return false;
}
