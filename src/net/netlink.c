/* rtnetlink over libmnl: links (bridge, veth), addresses, routes and dumps.
 * Requests that belong together go out in one sendmsg (one batch, one ack
 * per message), so an endpoint costs two round trips: the veth (created with
 * its peer already inside the target namespace, enslaved and up) and the
 * namespace-side configuration. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <string.h>

#include "net/internal.h"

#define NL_BUFSZ (64 * 1024)
#define NL_MAXMSG 16

struct hcs_nl {
  struct mnl_socket *sock;
  unsigned int portid, seq;
  char *buf;
  /* Batch being built: messages and what each one does (for errors). */
  size_t len;
  int n;
  char *what[NL_MAXMSG];
};

static void batch_reset(struct hcs_nl *nl) {
  for (int i = 0; i < nl->n; i++)
    free(nl->what[i]);
  nl->len = 0;
  nl->n = 0;
}

struct hcs_nl *hcs_nl_open(int nsfd, hcs_error_t *err) {
  cleanup_close int orig = -1;
  if (nsfd >= 0) {
    /* A netlink socket stays bound to the netns it was created in. */
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) {
      hcs_error_make(err, errno, "open `/proc/thread-self/ns/net`");
      return NULL;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      hcs_error_make(err, errno, "enter network namespace");
      return NULL;
    }
  }
  struct mnl_socket *sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  int saved = errno;
  if (nsfd >= 0 && setns(orig, CLONE_NEWNET) < 0) abort(); /* cannot leave the thread in the wrong netns */
  if (sock == NULL) {
    hcs_error_make(err, saved, "open rtnetlink socket");
    return NULL;
  }
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    hcs_error_make(err, errno, "bind rtnetlink socket");
    mnl_socket_close(sock);
    return NULL;
  }
  struct hcs_nl *nl = hcs_xcalloc(1, sizeof *nl);
  nl->sock = sock;
  nl->portid = mnl_socket_get_portid(sock);
  nl->seq = 1;
  nl->buf = hcs_xmalloc(NL_BUFSZ);
  return nl;
}

void hcs_nl_close(struct hcs_nl *nl) {
  if (nl == NULL) return;
  batch_reset(nl);
  mnl_socket_close(nl->sock);
  free(nl->buf);
  free(nl);
}

static struct nlmsghdr *msg_start(struct hcs_nl *nl, int type, int flags, char *what) {
  if (nl->n >= NL_MAXMSG || nl->len + 4096 > NL_BUFSZ) abort(); /* callers batch a handful of messages */
  struct nlmsghdr *h = mnl_nlmsg_put_header(nl->buf + nl->len);
  h->nlmsg_type = (uint16_t)type;
  h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
  h->nlmsg_seq = nl->seq + (unsigned)nl->n;
  nl->what[nl->n++] = what;
  return h;
}

static void msg_end(struct hcs_nl *nl, struct nlmsghdr *h) { nl->len += MNL_ALIGN(h->nlmsg_len); }

/* Send the batch and collect one ack per message; the first failure wins and
 * is reported with what that message did.  `ok_errno` is not an error. */
static int batch_send(struct hcs_nl *nl, int ok_errno, hcs_error_t *err) {
  int n = nl->n, status = 0, failed = -1;
  unsigned base = nl->seq;
  nl->seq += (unsigned)n;
  if (mnl_socket_sendto(nl->sock, nl->buf, nl->len) < 0) {
    hcs_error_make(err, errno, "netlink send (%s)", nl->what[0]);
    batch_reset(nl);
    return -1;
  }
  int acked = 0;
  while (acked < n) {
    ssize_t r = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUFSZ);
    if (r < 0) {
      if (errno == EINTR) continue;
      status = errno;
      failed = 0;
      break;
    }
    int len = (int)r;
    for (struct nlmsghdr *h = (struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
      if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < base || h->nlmsg_seq >= base + (unsigned)n) continue;
      const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
      acked++;
      if (e->error && -e->error != ok_errno && failed < 0) {
        status = -e->error;
        failed = (int)(h->nlmsg_seq - base);
      }
    }
  }
  int rc = 0;
  if (failed >= 0) rc = hcs_error_make(err, status, "%s", nl->what[failed]);
  batch_reset(nl);
  return rc;
}

static int index_cb(const struct nlmsghdr *h, void *data) {
  const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(h);
  *(int *)data = ifm->ifi_index;
  return MNL_CB_OK;
}

int hcs_nl_link_index(struct hcs_nl *nl, const char *name, hcs_error_t *err) {
  struct nlmsghdr *h = mnl_nlmsg_put_header(nl->buf);
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = nl->seq++;
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof *ifm);
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_u32(h, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  mnl_attr_put_strz(h, IFLA_IFNAME, name);
  unsigned seq = h->nlmsg_seq;
  if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0) return hcs_error_make(err, errno, "look up link `%s`", name);
  ssize_t r = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUFSZ);
  if (r < 0) return hcs_error_make(err, errno, "look up link `%s`", name);
  int index = 0;
  if (mnl_cb_run(nl->buf, (size_t)r, seq, nl->portid, index_cb, &index) < 0) {
    if (errno == ENODEV) return 0;
    return hcs_error_make(err, errno, "look up link `%s`", name);
  }
  return index;
}

static void put_flags_up(struct ifinfomsg *ifm, bool up) {
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_change = IFF_UP;
  ifm->ifi_flags = up ? IFF_UP : 0;
}

int hcs_nl_bridge_add(struct hcs_nl *nl, const char *name, const uint8_t mac[6], hcs_error_t *err) {
  struct nlmsghdr *h = msg_start(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, hcs_xasprintf("create bridge `%s`", name));
  put_flags_up(mnl_nlmsg_put_extra_header(h, sizeof(struct ifinfomsg)), true);
  mnl_attr_put_strz(h, IFLA_IFNAME, name);
  /* A bridge given no address takes the lowest of its ports' and changes it
   * as veths come and go: the containers' ARP entries for the gateway then
   * point nowhere until they expire.  A set address stays. */
  if (mac) mnl_attr_put(h, IFLA_ADDRESS, 6, mac);
  struct nlattr *li = mnl_attr_nest_start(h, IFLA_LINKINFO);
  mnl_attr_put_strz(h, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(h, li);
  msg_end(nl, h);
  return batch_send(nl, 0, err);
}

int hcs_nl_link_set(struct hcs_nl *nl, int ifindex, int master, bool up, hcs_error_t *err) {
  struct nlmsghdr *h = msg_start(nl, RTM_NEWLINK, 0, hcs_xasprintf("configure link %d", ifindex));
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof *ifm);
  put_flags_up(ifm, up);
  ifm->ifi_index = ifindex;
  if (master >= 0) mnl_attr_put_u32(h, IFLA_MASTER, (uint32_t)master);
  msg_end(nl, h);
  return batch_send(nl, 0, err);
}

int hcs_nl_links_down(struct hcs_nl *nl, const char *const *names, size_t n, hcs_error_t *err) {
  for (size_t i = 0; i < n; i += NL_MAXMSG) {
    for (size_t j = i; j < n && j < i + NL_MAXMSG; j++) {
      struct nlmsghdr *h = msg_start(nl, RTM_NEWLINK, 0, hcs_xasprintf("unplug link `%s`", names[j]));
      put_flags_up(mnl_nlmsg_put_extra_header(h, sizeof(struct ifinfomsg)), false);
      mnl_attr_put_strz(h, IFLA_IFNAME, names[j]);
      msg_end(nl, h);
    }
    if (batch_send(nl, ENODEV, err) < 0) return -1;
  }
  return 0;
}

int hcs_nl_link_del(struct hcs_nl *nl, const char *name, hcs_error_t *err) {
  struct nlmsghdr *h = msg_start(nl, RTM_DELLINK, 0, hcs_xasprintf("delete link `%s`", name));
  mnl_nlmsg_put_extra_header(h, sizeof(struct ifinfomsg));
  mnl_attr_put_strz(h, IFLA_IFNAME, name);
  msg_end(nl, h);
  return batch_send(nl, ENODEV, err);
}

int hcs_nl_veth_add(struct hcs_nl *nl, const char *host, int master, const char *peer, int peer_nsfd,
                    const uint8_t mac[6], hcs_error_t *err) {
  struct nlmsghdr *h = msg_start(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                                 hcs_xasprintf("create veth `%s` with peer `%s` in the namespace", host, peer));
  put_flags_up(mnl_nlmsg_put_extra_header(h, sizeof(struct ifinfomsg)), true);
  mnl_attr_put_strz(h, IFLA_IFNAME, host);
  if (master > 0) mnl_attr_put_u32(h, IFLA_MASTER, (uint32_t)master);
  struct nlattr *li = mnl_attr_nest_start(h, IFLA_LINKINFO);
  mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
  struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
  struct nlattr *p = mnl_attr_nest_start(h, VETH_INFO_PEER);
  /* The peer cannot be created up (ENOTCONN): hcs_nl_configure does that. */
  mnl_nlmsg_put_extra_header(h, sizeof(struct ifinfomsg));
  mnl_attr_put_strz(h, IFLA_IFNAME, peer);
  if (mac) mnl_attr_put(h, IFLA_ADDRESS, 6, mac);
  if (peer_nsfd >= 0) mnl_attr_put_u32(h, IFLA_NET_NS_FD, (uint32_t)peer_nsfd);
  mnl_attr_nest_end(h, p);
  mnl_attr_nest_end(h, data);
  mnl_attr_nest_end(h, li);
  msg_end(nl, h);
  return batch_send(nl, 0, err);
}

static void put_addr(struct hcs_nl *nl, int ifindex, struct in_addr a, int len) {
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, ip, sizeof ip);
  struct nlmsghdr *h =
      msg_start(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, hcs_xasprintf("add address `%s/%d`", ip, len));
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (uint8_t)len;
  ifa->ifa_index = (uint32_t)ifindex;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  mnl_attr_put_u32(h, IFA_LOCAL, a.s_addr);
  mnl_attr_put_u32(h, IFA_ADDRESS, a.s_addr);
  if (len < 31) mnl_attr_put_u32(h, IFA_BROADCAST, a.s_addr | htonl(~hcs_net_mask(len)));
  msg_end(nl, h);
}

int hcs_nl_addr_add(struct hcs_nl *nl, int ifindex, struct in_addr a, int len, hcs_error_t *err) {
  put_addr(nl, ifindex, a, len);
  return batch_send(nl, EEXIST, err);
}

static void put_route(struct hcs_nl *nl, int ifindex, const struct hcs_prefix *dst, const struct in_addr *via) {
  char d[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &dst->addr, d, sizeof d);
  if (via) inet_ntop(AF_INET, via, g, sizeof g);
  struct nlmsghdr *h = msg_start(nl, RTM_NEWROUTE, NLM_F_CREATE,
                                 hcs_xasprintf("add route `%s/%d`%s%s", d, dst->len, via ? " via " : "", g));
  struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof *rtm);
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = (uint8_t)dst->len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (dst->len > 0) mnl_attr_put_u32(h, RTA_DST, dst->addr.s_addr);
  if (via) mnl_attr_put_u32(h, RTA_GATEWAY, via->s_addr);
  mnl_attr_put_u32(h, RTA_OIF, (uint32_t)ifindex);
  msg_end(nl, h);
}

int hcs_nl_configure(struct hcs_nl *nl, const struct hcs_nl_ifconf *c, hcs_error_t *err) {
  int ifindex = hcs_nl_link_index(nl, c->ifname, err);
  if (ifindex < 0) return -1;
  if (ifindex == 0) return hcs_error_make(err, ENODEV, "configure `%s` in the namespace", c->ifname);
  /* lo is always ifindex 1 in a network namespace. */
  struct nlmsghdr *h = msg_start(nl, RTM_NEWLINK, 0, hcs_xstrdup("set `lo` up"));
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof *ifm);
  put_flags_up(ifm, true);
  ifm->ifi_index = 1;
  msg_end(nl, h);
  cleanup_free char *what = hcs_xasprintf("set `%s` up", c->ifname);
  h = msg_start(nl, RTM_NEWLINK, 0, steal_ptr(what));
  ifm = mnl_nlmsg_put_extra_header(h, sizeof *ifm);
  put_flags_up(ifm, true);
  ifm->ifi_index = ifindex;
  msg_end(nl, h);
  if (c->prefixlen > 0) put_addr(nl, ifindex, c->addr, c->prefixlen);
  for (size_t i = 0; i < c->n_routes; i++)
    put_route(nl, ifindex, &c->routes[i].dst, c->routes[i].has_via ? &c->routes[i].via : NULL);
  if (c->has_gateway && c->prefixlen > 0) {
    struct hcs_prefix any = {{0}, 0};
    put_route(nl, ifindex, &any, &c->gateway);
  }
  return batch_send(nl, EEXIST, err);
}

struct linkinfo_parse {
  const struct nlattr *tb[IFLA_MAX + 1];
};

static int attr_cb(const struct nlattr *a, void *data) {
  const struct nlattr **tb = data;
  int type = mnl_attr_get_type(a);
  if (type <= IFLA_MAX) tb[type] = a; /* every table used here is at least IFLA_MAX long */
  return MNL_CB_OK;
}

static const char *link_kind(const struct nlattr *linkinfo) {
  if (linkinfo == NULL) return NULL;
  const struct nlattr *a;
  mnl_attr_for_each_nested(a, linkinfo) if (mnl_attr_get_type(a) == IFLA_INFO_KIND) return mnl_attr_get_str(a);
  return NULL;
}

static int link_dump_cb(const struct nlmsghdr *h, void *data) {
  const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(h);
  const struct nlattr *tb[IFLA_MAX + 1] = {0};
  mnl_attr_parse(h, sizeof *ifm, attr_cb, tb);
  json_t *o = json_pack("{s:i,s:s,s:b}", "InterfaceIndex", ifm->ifi_index, "InterfaceAlias",
                        tb[IFLA_IFNAME] ? mnl_attr_get_str(tb[IFLA_IFNAME]) : "", "Up", (ifm->ifi_flags & IFF_UP) != 0);
  if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6) {
    cleanup_free char *mac = hcs_net_format_mac(mnl_attr_get_payload(tb[IFLA_ADDRESS]));
    json_object_set_new(o, "MacAddress", json_string(mac));
  }
  if (tb[IFLA_MTU]) json_object_set_new(o, "NlMtu", json_integer(mnl_attr_get_u32(tb[IFLA_MTU])));
  const char *kind = link_kind(tb[IFLA_LINKINFO]);
  if (kind) json_object_set_new(o, "Kind", json_string(kind));
  if (tb[IFLA_MASTER]) json_object_set_new(o, "Master", json_integer(mnl_attr_get_u32(tb[IFLA_MASTER])));
  json_object_set_new(o, "IpAddresses", json_array());
  json_array_append_new(data, o);
  return MNL_CB_OK;
}

static int addr_dump_cb(const struct nlmsghdr *h, void *data) {
  const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
  const struct nlattr *tb[IFLA_MAX + 1] = {0};
  mnl_attr_parse(h, sizeof *ifa, attr_cb, tb);
  const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (a == NULL || ifa->ifa_family != AF_INET) return MNL_CB_OK;
  struct in_addr ip = {mnl_attr_get_u32(a)};
  cleanup_free char *s = hcs_net_format_ip(ip);
  json_array_append_new(data, json_pack("{s:i,s:s,s:i}", "InterfaceIndex", ifa->ifa_index, "IpAddress", s,
                                        "PrefixLength", ifa->ifa_prefixlen));
  return MNL_CB_OK;
}

static int route_dump_cb(const struct nlmsghdr *h, void *data) {
  const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
  const struct nlattr *tb[IFLA_MAX + 1] = {0};
  mnl_attr_parse(h, sizeof *rtm, attr_cb, tb);
  uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
  if (rtm->rtm_family != AF_INET || table != RT_TABLE_MAIN) return MNL_CB_OK;
  struct in_addr dst = {tb[RTA_DST] ? mnl_attr_get_u32(tb[RTA_DST]) : 0};
  cleanup_free char *d = hcs_net_format_ip(dst);
  cleanup_free char *prefix = hcs_xasprintf("%s/%d", d, rtm->rtm_dst_len);
  cleanup_free char *via = NULL;
  if (tb[RTA_GATEWAY]) via = hcs_net_format_ip((struct in_addr){mnl_attr_get_u32(tb[RTA_GATEWAY])});
  json_t *r = json_pack("{s:s,s:s,s:i}", "DestinationPrefix", prefix, "NextHop", via ? via : "0.0.0.0", "RouteMetric",
                        tb[RTA_PRIORITY] ? (int)mnl_attr_get_u32(tb[RTA_PRIORITY]) : 0);
  if (tb[RTA_OIF]) json_object_set_new(r, "InterfaceIndex", json_integer(mnl_attr_get_u32(tb[RTA_OIF])));
  json_object_set_new(r, "Protocol",
                      json_string(rtm->rtm_protocol == RTPROT_KERNEL ? "Kernel"
                                  : rtm->rtm_protocol == RTPROT_BOOT ? "Static"
                                                                     : "Other"));
  json_array_append_new(data, r);
  return MNL_CB_OK;
}

/* Does buf hold the end (NLMSG_DONE or an error) of the dump with seq? */
static bool dump_ends_in(const void *buf, size_t size, unsigned seq) {
  int len = (int)size;
  for (const struct nlmsghdr *h = buf; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
    if (h->nlmsg_seq == seq && (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)) return true;
  return false;
}

/* Dump into out (a JSON array cb appends to).  A dump the kernel marks
 * interrupted (NLM_F_DUMP_INTR: links or addresses changed meanwhile, as
 * other systems come and go) is read to its end and started again: left
 * unread, its rest was taken for the answer to the socket's next request. */
static int dump(struct hcs_nl *nl, int type, size_t hdrlen, int family, mnl_cb_t cb, json_t *out, const char *what,
                hcs_error_t *err) {
  for (int attempt = 0;; attempt++) {
    json_array_clear(out);
    struct nlmsghdr *h = mnl_nlmsg_put_header(nl->buf);
    h->nlmsg_type = (uint16_t)type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h->nlmsg_seq = nl->seq++;
    struct rtgenmsg *g = mnl_nlmsg_put_extra_header(h, hdrlen);
    g->rtgen_family = (uint8_t)family; /* first byte of ifinfomsg/ifaddrmsg/rtmsg */
    unsigned seq = h->nlmsg_seq;
    if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0) return hcs_error_make(err, errno, "dump %s", what);
    int rc;
    ssize_t r;
    do {
      do
        r = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUFSZ);
      while (r < 0 && errno == EINTR);
      if (r < 0) return hcs_error_make(err, errno, "dump %s", what);
      rc = mnl_cb_run(nl->buf, (size_t)r, seq, nl->portid, cb, out);
    } while (rc == MNL_CB_OK);
    if (rc == MNL_CB_STOP) return 0;
    int e = errno;
    /* Read the rest of this dump so the socket is clean for what follows. */
    while (!dump_ends_in(nl->buf, (size_t)r, seq)) {
      do
        r = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUFSZ);
      while (r < 0 && errno == EINTR);
      if (r < 0) break;
    }
    if (e != EINTR || attempt == 31) return hcs_error_make(err, e, "dump %s", what);
  }
}

json_t *hcs_nl_dump_interfaces(struct hcs_nl *nl, hcs_error_t *err) {
  cleanup_json json_t *links = json_array();
  cleanup_json json_t *addrs = json_array();
  if (dump(nl, RTM_GETLINK, sizeof(struct ifinfomsg), AF_UNSPEC, link_dump_cb, links, "links", err) < 0) return NULL;
  if (dump(nl, RTM_GETADDR, sizeof(struct ifaddrmsg), AF_INET, addr_dump_cb, addrs, "addresses", err) < 0) return NULL;
  size_t i, j;
  json_t *l, *a;
  json_array_foreach(links, i, l) {
    json_int_t idx = json_integer_value(json_object_get(l, "InterfaceIndex"));
    json_array_foreach(addrs, j, a) {
      if (json_integer_value(json_object_get(a, "InterfaceIndex")) != idx) continue;
      json_array_append_new(json_object_get(l, "IpAddresses"),
                            json_pack("{s:O,s:O}", "IpAddress", json_object_get(a, "IpAddress"), "PrefixLength",
                                      json_object_get(a, "PrefixLength")));
    }
  }
  return steal_ptr(links);
}

json_t *hcs_nl_dump_routes(struct hcs_nl *nl, hcs_error_t *err) {
  json_t *routes = json_array();
  if (dump(nl, RTM_GETROUTE, sizeof(struct rtmsg), AF_INET, route_dump_cb, routes, "routes", err) < 0) {
    json_decref(routes);
    return NULL;
  }
  return routes;
}

bool hcs_nl_link_is_bridge(struct hcs_nl *nl, const char *name) {
  cleanup_json json_t *links = json_array();
  if (dump(nl, RTM_GETLINK, sizeof(struct ifinfomsg), AF_UNSPEC, link_dump_cb, links, "links", NULL) < 0) return false;
  size_t i;
  json_t *l;
  json_array_foreach(links, i, l) {
    const char *kind = json_string_value(json_object_get(l, "Kind"));
    if (strcmp(json_string_value(json_object_get(l, "InterfaceAlias")), name) == 0)
      return kind && strcmp(kind, "bridge") == 0;
  }
  return false;
}
