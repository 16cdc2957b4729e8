/* IPv4 prefixes and MAC addresses: parsing (inet_pton) with errors that say
 * what, where and why, formatting, and subnet arithmetic. */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "net/internal.h"

uint32_t hcs_net_mask(int len) { return len <= 0 ? 0 : len >= 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1); }

int hcs_net_parse_ip(const char *s, struct in_addr *a, const char *where, hcs_error_t *err) {
  if (s == NULL || inet_pton(AF_INET, s, a) != 1)
    return hcs_error_make(err, 0, "%s: `%s` is not an IPv4 address", where, s ? s : "(missing)");
  return 0;
}

int hcs_net_parse_prefix(const char *s, struct hcs_prefix *p, const char *where, hcs_error_t *err) {
  if (s == NULL) return hcs_error_make(err, 0, "%s: missing prefix", where);
  const char *slash = strchr(s, '/');
  if (slash == NULL) return hcs_error_make(err, 0, "%s: `%s` is not a prefix (expected ADDRESS/LENGTH)", where, s);
  char addr[INET_ADDRSTRLEN];
  size_t n = (size_t)(slash - s);
  if (n == 0 || n >= sizeof addr) return hcs_error_make(err, 0, "%s: `%s` has no valid address part", where, s);
  memcpy(addr, s, n);
  addr[n] = '\0';
  if (inet_pton(AF_INET, addr, &p->addr) != 1)
    return hcs_error_make(err, 0, "%s: `%s`: `%s` is not an IPv4 address", where, s, addr);
  const char *len = slash + 1;
  if (*len == '\0' || strlen(len) > 2 || !isdigit((unsigned char)len[0]) || (len[1] && !isdigit((unsigned char)len[1])))
    return hcs_error_make(err, 0, "%s: `%s`: prefix length must be 0..32", where, s);
  p->len = atoi(len);
  if (p->len > 32) return hcs_error_make(err, 0, "%s: `%s`: prefix length must be 0..32", where, s);
  if (ntohl(p->addr.s_addr) & ~hcs_net_mask(p->len)) {
    struct in_addr base = {htonl(ntohl(p->addr.s_addr) & hcs_net_mask(p->len))};
    char b[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &base, b, sizeof b);
    return hcs_error_make(err, 0, "%s: `%s` has host bits set (did you mean %s/%d?)", where, s, b, p->len);
  }
  return 0;
}

bool hcs_net_in_prefix(const struct hcs_prefix *p, struct in_addr a) {
  uint32_t m = hcs_net_mask(p->len);
  return (ntohl(a.s_addr) & m) == (ntohl(p->addr.s_addr) & m);
}

bool hcs_net_prefix_overlap(const struct hcs_prefix *a, const struct hcs_prefix *b) {
  int len = a->len < b->len ? a->len : b->len;
  uint32_t m = hcs_net_mask(len);
  return (ntohl(a->addr.s_addr) & m) == (ntohl(b->addr.s_addr) & m);
}

/* Accepts 02:42:0a:00:00:02 and the HCN form 02-42-0A-00-00-02. */
int hcs_net_parse_mac(const char *s, uint8_t mac[6], const char *where, hcs_error_t *err) {
  if (s == NULL || strlen(s) != 17) goto bad;
  for (int i = 0; i < 6; i++) {
    const char *h = s + i * 3;
    if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1])) goto bad;
    if (i < 5 && h[2] != ':' && h[2] != '-') goto bad;
    char byte[3] = {h[0], h[1], 0};
    mac[i] = (uint8_t)strtoul(byte, NULL, 16);
  }
  if (mac[0] & 1) return hcs_error_make(err, 0, "%s: `%s` is a multicast MAC address", where, s);
  if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
    return hcs_error_make(err, 0, "%s: `%s` is the zero MAC address", where, s);
  return 0;
bad:
  return hcs_error_make(err, 0, "%s: `%s` is not a MAC address (expected 6 hex bytes like 00-15-5D-01-02-03)", where,
                        s ? s : "(missing)");
}

char *hcs_net_format_mac(const uint8_t m[6]) {
  return hcs_xasprintf("%02X-%02X-%02X-%02X-%02X-%02X", m[0], m[1], m[2], m[3], m[4], m[5]);
}

char *hcs_net_format_ip(struct in_addr a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return hcs_xstrdup(buf);
}
