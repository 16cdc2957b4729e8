/* DNS for an endpoint: resolv.conf and hosts written into the endpoint's
 * directory for the container to bind-mount.  Servers come from the
 * endpoint's or network's Dns.ServerList, else from the host; a host that
 * points at a loopback stub (systemd-resolved's 127.0.0.53) is useless inside
 * another netns, so the stub's upstream list is used instead. */
#include <arpa/inet.h>
#include <string.h>

#include "net/internal.h"

static bool is_loopback(const char *ip) {
  struct in_addr a;
  if (inet_pton(AF_INET, ip, &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return strcmp(ip, "::1") == 0;
}

/* Append the non-loopback nameservers of a resolv.conf to `servers`, and its
 * search/options lines to `extra` (first file that has them wins). */
static int read_resolv(const char *path, json_t *servers, char **extra) {
  cleanup_free char *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return -1;
  int loopback = 0;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *p = line + strspn(line, " \t");
    if (strncmp(p, "nameserver", 10) == 0 && (p[10] == ' ' || p[10] == '\t')) {
      char *ip = p + 10 + strspn(p + 10, " \t");
      ip[strcspn(ip, " \t#;")] = '\0';
      if (is_loopback(ip))
        loopback++;
      else
        json_array_append_new(servers, json_string(ip));
    } else if ((strncmp(p, "search", 6) == 0 || strncmp(p, "options", 7) == 0) && *extra == NULL) {
      *extra = hcs_xasprintf("%s\n", p);
    } else if ((strncmp(p, "search", 6) == 0 || strncmp(p, "options", 7) == 0)) {
      char *more = hcs_xasprintf("%s%s\n", *extra, p);
      free(*extra);
      *extra = more;
    }
  }
  return loopback;
}

/* Derived files (rebuilt on every create/attach), replaced by rename so a
 * reader never sees half a file. */
static int write_derived(const char *path, const char *text, hcs_error_t *err) {
  return hcs_write_file_replace(path, text, strlen(text), 0644, err);
}

static json_t *server_list(json_t *dns) {
  json_t *sl = json_object_get(dns, "ServerList");
  json_t *out = json_array();
  if (json_is_array(sl)) {
    size_t i;
    json_t *s;
    json_array_foreach(sl, i, s) if (json_is_string(s)) json_array_append(out, s);
  } else if (json_is_string(sl)) { /* HCN v1 spelling: "1.1.1.1,8.8.8.8" */
    cleanup_free char *copy = hcs_xstrdup(json_string_value(sl));
    for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
      json_array_append_new(out, json_string(t));
  }
  return out;
}

int hcs_dns_write(const char *dir, json_t *dns, const char *hostname, const char *ip, hcs_error_t *err) {
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  cleanup_json json_t *servers = server_list(dns);
  cleanup_free char *extra = NULL;
  if (json_array_size(servers) == 0) {
    const char *host = getenv("HCS_HOST_RESOLV_CONF") ?: "/etc/resolv.conf";
    const char *upstream = getenv("HCS_RESOLVED_CONF") ?: "/run/systemd/resolve/resolv.conf";
    if (read_resolv(host, servers, &extra) > 0 && json_array_size(servers) == 0) {
      free(extra);
      extra = NULL;
      read_resolv(upstream, servers, &extra);
    }
  }
  cleanup_free char *conf = hcs_xstrdup("# written by hcs for this endpoint\n");
  const char *domain = json_string_value(json_object_get(dns, "Domain"));
  json_t *search = json_object_get(dns, "Search");
  if (domain && *domain) {
    char *s = hcs_xasprintf("%sdomain %s\n", conf, domain);
    free(conf);
    conf = s;
  }
  size_t i;
  json_t *v;
  json_array_foreach(servers, i, v) {
    char *s = hcs_xasprintf("%snameserver %s\n", conf, json_string_value(v));
    free(conf);
    conf = s;
  }
  if (json_array_size(search) > 0) {
    char *s = hcs_xasprintf("%ssearch", conf);
    json_array_foreach(search, i, v) {
      char *t = hcs_xasprintf("%s %s", s, json_string_value(v) ?: "");
      free(s);
      s = t;
    }
    free(conf);
    conf = hcs_xasprintf("%s\n", s);
    free(s);
  } else if (extra) {
    char *s = hcs_xasprintf("%s%s", conf, extra);
    free(conf);
    conf = s;
  }
  cleanup_free char *path = hcs_xasprintf("%s/resolv.conf", dir);
  if (write_derived(path, conf, err) < 0) return -1;
  cleanup_free char *hosts = hcs_xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                           "%s%s%s%s",
                                           ip ? ip : "", ip ? "\t" : "", ip ? hostname : "", ip ? "\n" : "");
  free(path);
  path = hcs_xasprintf("%s/hosts", dir);
  return write_derived(path, hosts, err);
}
