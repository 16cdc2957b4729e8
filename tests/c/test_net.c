/* Networks, as root, in a private "host" network namespace this test makes
 * (unshare), so the real host's network is never touched: validation
 * errors, endpoint plumbing seen by the kernel, 500 create/delete cycles
 * without leaks, IPAM reclaim after a simulated crash, and full clean-up. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/net.h"
#include "net/internal.h"
#include "tap.h"

static char root[64];
static char table[32]; /* "ip hcs<hash>": the root's nftables table */

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  if (d == NULL) return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* Output of a shell command (run inside this test's netns). */
static char *sh(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *cmd = NULL;
  if (vasprintf(&cmd, fmt, ap) < 0) abort();
  va_end(ap);
  FILE *p = popen(cmd, "r");
  free(cmd);
  size_t cap = 65536, n = 0;
  char *buf = calloc(1, cap);
  if (p) {
    n = fread(buf, 1, cap - 1, p);
    pclose(p);
  }
  buf[n] = '\0';
  return buf;
}

static int count_links(void) {
  char *out = sh("ip -o link show | wc -l");
  int n = atoi(out);
  free(out);
  return n;
}

static bool nft_table_exists(void) {
  char *out = sh("nft list tables 2>/dev/null");
  bool yes = strstr(out, "table ip hcs") != NULL;
  free(out);
  return yes;
}

static int count_fds(void) { return count_dir("/proc/self/fd"); }

static char *expect_ok(char *doc, hcs_error_t *err, const char *what) {
  ok(doc != NULL, "%s", what);
  if (doc == NULL) printf("#   error: %s\n", hcs_error_message(*err));
  hcs_error_release(err);
  return doc;
}

static void expect_fail(char *doc, hcs_error_t *err, const char *needle, const char *what) {
  ok(doc == NULL, "%s is refused", what);
  has_substr(hcs_error_message(*err), needle, "%s: message says why", what);
  free(doc);
  hcs_error_release(err);
}

/* A NAT network given no subnet gets the first pool subnet that overlaps
 * no other network (va: 10.88.0.0/24) and no route of the host. */
static void test_auto_subnet(hcs_net_t *net) {
  hcs_error_t err = NULL;
  char *a = expect_ok(hcs_net_network_create(net, "{\"Name\":\"auto1\",\"Type\":\"NAT\"}", &err), &err,
                      "a NAT network without a subnet is created");
  has_substr(a, "\"IpAddressPrefix\":\"10.89.0.0/16\"", "with the first pool subnet clear of network va");
  has_substr(a, "\"Gateway\":\"10.89.0.1\"", "and its first address as gateway");
  char *ep = expect_ok(hcs_net_endpoint_create(net, "{\"Name\":\"auto-ep\",\"HostComputeNetwork\":\"auto1\"}", &err),
                       &err, "an endpoint on it");
  has_substr(ep, "\"IpAddress\":\"10.89.0.2\"", "gets an address in the picked subnet");
  if (system("ip route add blackhole 10.90.0.0/16 && ip route add blackhole 10.91.128.0/24") != 0)
    ok(0, "add host routes");
  char *b = expect_ok(hcs_net_network_create(net, "{\"Name\":\"auto2\"}", &err), &err, "a second one");
  has_substr(b, "\"IpAddressPrefix\":\"10.92.0.0/16\"", "skips subnets the host routes (10.90/16, 10.91.128/24)");
  ok(hcs_net_network_delete(net, "auto1", true, &err) == 0 && hcs_net_network_delete(net, "auto2", true, &err) == 0,
     "delete them");
  hcs_error_release(&err);
  if (system("ip route del blackhole 10.90.0.0/16 && ip route del blackhole 10.91.128.0/24") != 0)
    ok(0, "remove the host routes");
  free(a);
  free(b);
  free(ep);
}

static void test_validation(hcs_net_t *net) {
  hcs_error_t err = NULL;
  char *a =
      expect_ok(hcs_net_network_create(net,
                                       "{\"Name\":\"va\",\"Type\":\"NAT\",\"Ipams\":[{\"Type\":\"Static\",\"Subnets\":"
                                       "[{\"IpAddressPrefix\":\"10.88.0.0/24\"}]}]}",
                                       &err),
                &err, "create NAT network va");
  expect_fail(hcs_net_network_create(
                  net, "{\"Name\":\"vb\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.88.0.128/25\"}]}]}", &err),
              &err, "overlaps `10.88.0.0/24` of network `va`", "overlapping subnet");
  expect_fail(hcs_net_network_create(
                  net, "{\"Name\":\"va\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.89.0.0/24\"}]}]}", &err),
              &err, "name is already used", "duplicate network name");
  expect_fail(hcs_net_network_create(
                  net, "{\"Name\":\"vc\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.89.0.0/33\"}]}]}", &err),
              &err, "prefix length must be 0..32", "bad prefix length");
  expect_fail(hcs_net_network_create(
                  net, "{\"Name\":\"vc\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.89.0.1/24\"}]}]}", &err),
              &err, "host bits set", "prefix with host bits");
  expect_fail(
      hcs_net_network_create(net,
                             "{\"Name\":\"vc\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.89.0.0/24\","
                             "\"Routes\":[{\"NextHop\":\"10.90.0.1\",\"DestinationPrefix\":\"0.0.0.0/0\"}]}]}]}",
                             &err),
      &err, "outside the subnet", "gateway outside the subnet");
  expect_fail(hcs_net_network_create(net, "{\"Name\":\"vc\",\"Type\":\"Overlay\"}", &err), &err,
              "Type `Overlay` is not supported", "unsupported type");
  test_auto_subnet(net);
  expect_fail(hcs_net_network_create(net, "{\"Name\":", &err), &err, "parse HostComputeNetwork", "malformed JSON");
  expect_fail(
      hcs_net_endpoint_create(net, "{\"HostComputeNetwork\":\"va\",\"MacAddress\":\"zz-00-00-00-00-01\"}", &err), &err,
      "is not a MAC address", "bad MAC");
  expect_fail(hcs_net_endpoint_create(
                  net, "{\"HostComputeNetwork\":\"va\",\"IpConfigurations\":[{\"IpAddress\":\"10.1.1.1\"}]}", &err),
              &err, "outside the subnet", "address outside the subnet");
  expect_fail(hcs_net_endpoint_create(net, "{\"HostComputeNetwork\":\"nope\"}", &err), &err, "no such id or name",
              "unknown network");
  char *e1 = expect_ok(hcs_net_endpoint_create(net,
                                               "{\"Name\":\"e1\",\"HostComputeNetwork\":\"va\",\"Policies\":[{\"Type\":"
                                               "\"PortMapping\",\"Settings\":{\"Protocol\":\"TCP\",\"InternalPort\":80,"
                                               "\"ExternalPort\":8080}}]}",
                                               &err),
                       &err, "endpoint with a port mapping");
  expect_fail(hcs_net_endpoint_create(net,
                                      "{\"Name\":\"e2\",\"HostComputeNetwork\":\"va\",\"Policies\":[{\"Type\":"
                                      "\"PortMapping\",\"Settings\":{\"Protocol\":\"TCP\",\"InternalPort\":81,"
                                      "\"ExternalPort\":8080}}]}",
                                      &err),
              &err, "host port tcp/8080 is already mapped by endpoint `e1`", "duplicate host port");
  expect_fail(hcs_net_endpoint_create(net, "{\"Name\":\"e1\",\"HostComputeNetwork\":\"va\"}", &err), &err,
              "name is already used", "duplicate endpoint name");
  expect_fail(hcs_net_endpoint_create(net,
                                      "{\"Name\":\"e3\",\"HostComputeNetwork\":\"va\",\"Policies\":[{\"Type\":"
                                      "\"PortMapping\",\"Settings\":{\"InternalPort\":0,\"ExternalPort\":1}}]}",
                                      &err),
              &err, "InternalPort must be a port number", "bad port");
  char *out = sh("nft list map %s portmap", table);
  has_substr(out, "tcp . 8080 : 10.88.0.2 . 80", "the mapping is one map element");
  free(out);
  ok(hcs_net_network_delete(net, "va", false, &err) < 0, "a network with endpoints is not deleted without force");
  has_substr(hcs_error_message(err), "1 endpoint still use", "and the message says why");
  hcs_error_release(&err);
  ok(hcs_net_network_delete(net, "va", true, &err) == 0, "force deletes the network and its endpoint");
  hcs_error_release(&err);
  free(a);
  free(e1);
}

static void test_plumbing(hcs_net_t *net) {
  hcs_error_t err = NULL;
  free(expect_ok(hcs_net_network_create(
                     net, "{\"Name\":\"pl\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.77.0.0/24\"}]}]}", &err),
                 &err, "create network pl"));
  char *ns = expect_ok(hcs_net_namespace_create(net, "{\"Id\":\"c1\",\"ContainerId\":\"abc\"}", &err), &err,
                       "create namespace c1");
  char *ep =
      expect_ok(hcs_net_endpoint_create(
                    net, "{\"Name\":\"p1\",\"HostComputeNetwork\":\"pl\",\"HostComputeNamespace\":\"c1\"}", &err),
                &err, "create an endpoint directly in c1");
  char *detail = expect_ok(hcs_net_namespace_query(net, "c1", true, &err), &err, "query compartment with details");
  has_substr(detail, "\"Description\":\"Container_abc\"", "description names the container");
  has_substr(detail, "\"IpAddress\":\"10.77.0.2\"", "eth0 has the allocated address");
  has_substr(detail, "\"DestinationPrefix\":\"0.0.0.0/0\",\"InterfaceAlias\":\"eth0\"", "default route via eth0");
  has_substr(detail, "\"NextHop\":\"10.77.0.1\"", "via the gateway");
  char *path = hcs_net_namespace_path(net, "c1", &err);
  char *ping = sh("nsenter --net=%s busybox ping -c1 -W2 10.77.0.1 >/dev/null 2>&1 && echo reachable", path);
  has_substr(ping, "reachable", "the container reaches its gateway");
  free(ping);
  free(expect_ok(hcs_net_endpoint_detach(net, "p1", &err), &err, "detach"));
  char *links = sh("nsenter --net=%s ip -o link", path);
  ok(strstr(links, "eth0") == NULL, "detach removed eth0 from the namespace");
  free(links);
  free(expect_ok(hcs_net_endpoint_attach(net, "p1", "c1", &err), &err, "attach again"));
  char *p2 =
      expect_ok(hcs_net_endpoint_create(
                    net, "{\"Name\":\"p2\",\"HostComputeNetwork\":\"pl\",\"HostComputeNamespace\":\"c1\"}", &err),
                &err, "a second endpoint in the same namespace");
  has_substr(p2, "\"Interface\":\"eth1\"", "gets the next free interface name");
  free(p2);
  expect_fail(hcs_net_endpoint_create(net,
                                      "{\"Name\":\"p3\",\"HostComputeNetwork\":\"pl\",\"HostComputeNamespace\":\"c1\","
                                      "\"Linux\":{\"Interface\":\"eth0\"}}",
                                      &err),
              &err, "interface `eth0` already exists in namespace `c1`", "an interface name already taken");
  ok(hcs_net_endpoint_delete(net, "p2", &err) == 0, "delete the second endpoint");
  hcs_error_release(&err);
  ok(hcs_net_namespace_delete(net, "c1", &err) == 0, "delete the namespace (detaches its endpoint)");
  hcs_error_release(&err);
  ok(!hcs_path_exists(path), "the netns file is gone");
  char *q = expect_ok(hcs_net_endpoint_query(net, "p1", &err), &err, "query the endpoint");
  has_substr(q, "\"HostComputeNamespace\":null", "it reads as detached");
  free(q);
  free(expect_ok(hcs_net_namespace_create(net, "{\"Id\":\"c1\"}", &err), &err, "re-create a namespace named c1"));
  q = expect_ok(hcs_net_endpoint_query(net, "p1", &err), &err, "query the endpoint again");
  has_substr(q, "\"HostComputeNamespace\":null", "a new namespace of the same name is not the old attachment");
  free(q);
  free(expect_ok(hcs_net_endpoint_attach(net, "p1", "c1", &err), &err, "attach to the new c1"));
  ok(hcs_net_namespace_delete(net, "c1", &err) == 0, "delete it again");
  hcs_error_release(&err);
  ok(hcs_net_endpoint_delete(net, "p1", &err) == 0, "delete the endpoint");
  hcs_error_release(&err);
  ok(hcs_net_network_delete(net, "pl", false, &err) == 0, "delete the network");
  hcs_error_release(&err);
  free(path);
  free(ns);
  free(ep);
  free(detail);
}

static char *link_mac(const char *ifname) {
  char *out = sh("ip -o link show %s 2>/dev/null | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p'", ifname);
  out[strcspn(out, "\n")] = '\0';
  return out;
}

/* A bridge keeps its address when ports come and go (the kernel's default
 * is the lowest port address: removing that veth changed the gateway's MAC
 * under the containers' ARP entries, and their traffic went nowhere). */
static void test_bridge_mac(hcs_net_t *net) {
  hcs_error_t err = NULL;
  char *doc =
      expect_ok(hcs_net_network_create(
                    net, "{\"Name\":\"bm\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.78.0.0/24\"}]}]}", &err),
                &err, "create network bm");
  json_t *d = json_loads(doc ? doc : "{}", 0, NULL);
  const char *bridge = json_string_value(json_object_get(json_object_get(d, "Linux"), "Bridge"));
  char *before = link_mac(bridge ? bridge : "none");
  free(expect_ok(hcs_net_namespace_create(net, "{\"Id\":\"bm1\"}", &err), &err, "create a namespace"));
  char *ep =
      expect_ok(hcs_net_endpoint_create(
                    net, "{\"Name\":\"bm1\",\"HostComputeNetwork\":\"bm\",\"HostComputeNamespace\":\"bm1\"}", &err),
                &err, "plug an endpoint into it");
  json_t *e = json_loads(ep ? ep : "{}", 0, NULL);
  const char *host = json_string_value(json_object_get(json_object_get(e, "Linux"), "HostInterface"));
  /* The host end, a bridge port, has no IPv6: no link-local address and
   * no routes in the host's table (each delete walks that table). */
  char *out = sh("echo disable=$(cat /proc/sys/net/ipv6/conf/%s/disable_ipv6) routes=$(ip -6 route show table all dev "
                 "%s | wc -l) addrs=$(ip -6 -o addr show dev %s | wc -l)",
                 host ? host : "none", host ? host : "none", host ? host : "none");
  if (access("/proc/sys/net/ipv6", F_OK) == 0)
    is_str(out, "disable=1 routes=0 addrs=0\n", "the host end of the veth has no IPv6");
  free(out);
  out = sh("ip link set %s address 00:00:00:00:00:01 && echo set", host ? host : "none");
  has_substr(out, "set", "give the port the lowest address there is");
  free(out);
  char *during = link_mac(bridge ? bridge : "none");
  ok(*before && strcmp(before, during) == 0, "the bridge keeps its address (%s, now %s)", before, during);
  ok(hcs_net_namespace_delete(net, "bm1", &err) == 0 && hcs_net_endpoint_delete(net, "bm1", &err) == 0,
     "unplug the endpoint");
  hcs_error_release(&err);
  char *after = link_mac(bridge ? bridge : "none");
  ok(strcmp(before, after) == 0, "and still has it once the port is gone");
  ok(hcs_net_network_delete(net, "bm", false, &err) == 0, "delete network bm");
  hcs_error_release(&err);
  free(before);
  free(during);
  free(after);
  free(ep);
  free(doc);
  json_decref(d);
  json_decref(e);
}

static void test_modify_and_bridges(hcs_net_t *net) {
  hcs_error_t err = NULL;
  free(expect_ok(hcs_net_network_create(net,
                                        "{\"Name\":\"mo\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.44.0.0/"
                                        "24\"}]}],\"Policies\":[{\"Type\":\"OutBoundNAT\",\"Settings\":{"
                                        "\"Exceptions\":[\"10.45.0.0/16\"]}}]}",
                                        &err),
                 &err, "create a NAT network with an OutBoundNAT exception"));
  char *out = sh("nft list ruleset");
  has_substr(out, "10.45.0.0/16", "the exception is in the network's set");
  free(out);
  char *m = expect_ok(hcs_net_network_modify(net, "mo",
                                             "{\"RequestType\":\"Add\",\"ResourceType\":\"Policy\",\"Settings\":{"
                                             "\"Policies\":[{\"Type\":\"OutBoundNAT\",\"Settings\":{\"Exceptions\":["
                                             "\"172.20.0.0/16\"]}}]}}",
                                             &err),
                      &err, "add an exception");
  has_substr(m, "172.20.0.0/16", "the document lists it");
  free(m);
  out = sh("nft list ruleset");
  has_substr(out, "172.20.0.0/16", "and nftables has it");
  free(out);
  free(expect_ok(hcs_net_network_modify(net, "mo",
                                        "{\"RequestType\":\"Remove\",\"Settings\":{\"Policies\":[{\"Type\":"
                                        "\"OutBoundNAT\",\"Settings\":{\"Exceptions\":[\"172.20.0.0/16\"]}}]}}",
                                        &err),
                 &err, "remove it"));
  out = sh("nft list ruleset");
  ok(strstr(out, "172.20.0.0/16") == NULL, "nftables no longer has it");
  free(out);
  free(expect_ok(hcs_net_endpoint_create(net, "{\"Name\":\"me\",\"HostComputeNetwork\":\"mo\"}", &err), &err,
                 "endpoint without policies"));
#define PM(verb)                                                                                                       \
  "{\"RequestType\":\"" verb "\",\"ResourceType\":\"Policy\",\"Settings\":{\"Policies\":[{\"Type\":"                   \
  "\"PortMapping\",\"Settings\":{\"Protocol\":\"UDP\",\"InternalPort\":53,\"ExternalPort\":5353}}]}}"
  const char *add = PM("Add"), *del = PM("Remove");
  free(expect_ok(hcs_net_endpoint_modify(net, "me", add, &err), &err, "add a UDP port mapping"));
  out = sh("nft list map %s portmap", table);
  has_substr(out, "udp . 5353 : 10.44.0.2 . 53", "the map has it");
  free(out);
  expect_fail(hcs_net_endpoint_modify(net, "me", add, &err), &err, "already mapped", "adding it twice");
  free(expect_ok(hcs_net_endpoint_modify(net, "me", del, &err), &err, "remove it"));
  out = sh("nft list map %s portmap", table);
  ok(strstr(out, "5353") == NULL, "the map no longer has it");
  free(out);
  expect_fail(hcs_net_endpoint_modify(net, "me", del, &err), &err, "do not exist", "removing it twice");
  ok(hcs_net_network_delete(net, "mo", true, &err) == 0, "delete network mo");
  hcs_error_release(&err);

  /* Transparent: enslave a host adapter; L2Bridge: use an existing bridge. */
  if (system("ip link add hcs-tup type veth peer name hcs-tup2 && ip link add hcs-tbr type bridge") != 0) return;
  free(expect_ok(hcs_net_network_create(net,
                                        "{\"Name\":\"tr\",\"Type\":\"Transparent\",\"Ipams\":[{\"Subnets\":[{"
                                        "\"IpAddressPrefix\":\"192.168.50.0/24\",\"Routes\":[{\"NextHop\":\"192.168."
                                        "50.254\",\"DestinationPrefix\":\"0.0.0.0/0\"}]}]}],\"Policies\":[{\"Type\":"
                                        "\"NetAdapterName\",\"Settings\":{\"NetworkAdapterName\":\"hcs-tup\"}}]}",
                                        &err),
                 &err, "create a Transparent network on a host adapter"));
  out = sh("ip -o link show hcs-tup");
  has_substr(out, "master hcs", "the adapter is enslaved to the network's bridge");
  free(out);
  free(expect_ok(hcs_net_namespace_create(net, "{\"Id\":\"tns\"}", &err), &err, "namespace for it"));
  char *ep = expect_ok(hcs_net_endpoint_create(net,
                                               "{\"Name\":\"te\",\"HostComputeNetwork\":\"tr\","
                                               "\"HostComputeNamespace\":\"tns\"}",
                                               &err),
                       &err, "endpoint on the Transparent network");
  has_substr(ep, "\"IpAddress\":\"192.168.50.1\"", "gets the first address (the gateway is external)");
  free(ep);
  char *detail = expect_ok(hcs_net_namespace_query(net, "tns", true, &err), &err, "query it");
  has_substr(detail, "\"NextHop\":\"192.168.50.254\"", "default route via the external gateway");
  free(detail);
  ok(hcs_net_namespace_delete(net, "tns", &err) == 0 && hcs_net_network_delete(net, "tr", true, &err) == 0,
     "delete the Transparent network");
  hcs_error_release(&err);
  out = sh("ip -o link show hcs-tup");
  ok(strstr(out, "hcs-tup") && !strstr(out, "master"), "the adapter is released, not deleted");
  free(out);
  free(expect_ok(hcs_net_network_create(net,
                                        "{\"Name\":\"l2\",\"Type\":\"L2Bridge\",\"Policies\":[{\"Type\":"
                                        "\"NetAdapterName\",\"Settings\":{\"NetworkAdapterName\":\"hcs-tbr\"}}]}",
                                        &err),
                 &err, "create an L2Bridge network on an existing bridge"));
  ok(hcs_net_network_delete(net, "l2", false, &err) == 0, "delete it");
  hcs_error_release(&err);
  out = sh("ip -o link show hcs-tbr");
  has_substr(out, "hcs-tbr", "the existing bridge is left in place");
  free(out);
  if (system("ip link del hcs-tup && ip link del hcs-tbr") != 0) ok(0, "remove the test adapters");
}

static void test_cycles(hcs_net_t *net, int n) {
  hcs_error_t err = NULL;
  free(expect_ok(hcs_net_network_create(
                     net, "{\"Name\":\"cy\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.66.0.0/24\"}]}]}", &err),
                 &err, "create network cy"));
  int links = count_links(), fds = count_fds();
  cleanup_free char *leases = hcs_xasprintf("%s/run/net/ipam", root);
  int failures = 0;
  for (int i = 0; i < n && failures == 0; i++) {
    char *ns = hcs_net_namespace_create(net, "{\"Id\":\"cyc\"}", &err);
    char *ep = ns ? hcs_net_endpoint_create(net,
                                            "{\"Name\":\"cy\",\"HostComputeNetwork\":\"cy\",\"HostComputeNamespace\":"
                                            "\"cyc\",\"Policies\":[{\"Type\":\"PortMapping\",\"Settings\":{"
                                            "\"InternalPort\":80,\"ExternalPort\":9000}}]}",
                                            &err)
                  : NULL;
    /* Both orders: endpoint first (synchronous RTM_DELLINK), or compartment
     * first (the veth is reaped with the netns by the kernel). */
    bool ep_first = i % 2 == 0;
    if (ep == NULL || (ep_first && hcs_net_endpoint_delete(net, "cy", &err) < 0) ||
        hcs_net_namespace_delete(net, "cyc", &err) < 0 || (!ep_first && hcs_net_endpoint_delete(net, "cy", &err) < 0)) {
      printf("# cycle %d: %s\n", i, hcs_error_message(err));
      failures++;
    }
    free(ns);
    free(ep);
    hcs_error_release(&err);
  }
  is_int(failures, 0, "%d endpoint create/delete cycles succeed", n);
  for (int i = 0; i < 100 && count_links() != links; i++)
    usleep(50000); /* the kernel reaps netns asynchronously */
  is_int(count_links(), links, "no link left after the cycles");
  is_int(count_fds(), fds, "no file descriptor leaked");
  cleanup_free char *ipam = hcs_xasprintf("%s/run/net/ipam", root);
  char *out = sh("find %s -type f | wc -l", ipam);
  is_int(atoi(out), 0, "no lease left");
  free(out);
  cleanup_free char *nsdir = hcs_xasprintf("%s/run/netns", root);
  is_int(count_dir(nsdir), 0, "no netns file left");
  out = sh("nft list map %s portmap", table);
  ok(strstr(out, "9000") == NULL, "no port mapping element left");
  free(out);
  ok(hcs_net_network_delete(net, "cy", false, &err) == 0, "delete network cy");
  hcs_error_release(&err);
}

static void test_reclaim(void) {
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  free(expect_ok(
      hcs_net_network_create(
          net, "{\"Id\":\"rc\",\"Name\":\"rc\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.55.0.0/24\"}]}]}",
          &err),
      &err, "create network rc"));
  char *ep = expect_ok(hcs_net_endpoint_create(net, "{\"Name\":\"live\",\"HostComputeNetwork\":\"rc\"}", &err), &err,
                       "create a live endpoint");
  /* A crash between claiming a lease and writing the endpoint leaves this: */
  cleanup_free char *stale = hcs_xasprintf("%s/run/net/ipam/rc/10.55.0.3", root);
  ok(hcs_write_file_replace(stale, "0123-dead", 9, 0644, NULL) == 0, "plant a stale lease");
  /* ...and a crash that lost the (unsynced) lease of a live endpoint this: */
  cleanup_free char *lost = hcs_xasprintf("%s/run/net/ipam/rc/10.55.0.2", root);
  unlink(lost);
  hcs_net_close(net);
  /* A store left consistent is opened without a reconcile (it would read
   * every endpoint and lease): what was planted stays. */
  net = hcs_net_open(root, &err);
  ok(net != NULL && hcs_path_exists(stale) && !hcs_path_exists(lost),
     "a store with no change cut short is opened as is");
  hcs_net_close(net);
  /* The crashed process held the store for a change: its marker is left. */
  cleanup_free char *busy = hcs_xasprintf("%s/run/net/busy", root);
  ok(hcs_write_file_replace(busy, "", 0, 0600, NULL) == 0, "leave the marker of a change cut short");
  net = hcs_net_open(root, &err);
  ok(net != NULL, "reopen the store");
  ok(!hcs_path_exists(stale), "the stale lease is reclaimed on open");
  ok(hcs_path_exists(lost), "the lost lease of the live endpoint is restored");
  ok(!hcs_path_exists(busy), "and the marker is gone");
  char *ep2 = expect_ok(hcs_net_endpoint_create(net, "{\"Name\":\"next\",\"HostComputeNetwork\":\"rc\"}", &err), &err,
                        "create another endpoint");
  has_substr(ep2, "10.55.0.3", "it gets the reclaimed address, not the live one");
  /* Lazily too: a stale lease met during allocation is reclaimed. */
  cleanup_free char *stale2 = hcs_xasprintf("%s/run/net/ipam/rc/10.55.0.4", root);
  ok(hcs_write_file_replace(stale2, "gone-endpoint", 13, 0644, NULL) == 0, "plant another stale lease");
  char *ep3 = expect_ok(hcs_net_endpoint_create(net, "{\"Name\":\"third\",\"HostComputeNetwork\":\"rc\"}", &err), &err,
                        "create a third endpoint");
  has_substr(ep3, "10.55.0.4", "allocation reclaims a stale lease it meets");
  ok(hcs_net_network_delete(net, "rc", true, &err) == 0, "delete network rc with its endpoints");
  hcs_error_release(&err);
  free(ep);
  free(ep2);
  free(ep3);
  hcs_net_close(net);
}

/* A real crash: kill -9 a process in the middle of create/delete cycles,
 * then reopen (reconcile) and delete what it left: nothing may remain. */
static void test_kill9(void) {
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  free(expect_ok(hcs_net_network_create(
                     net, "{\"Name\":\"k9\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.33.0.0/24\"}]}]}", &err),
                 &err, "create network k9"));
  hcs_net_close(net);
  int links = count_links();
  for (int round = 0; round < 5; round++) {
    pid_t pid = fork();
    if (pid == 0) {
      hcs_net_t *n = hcs_net_open(root, NULL);
      for (int i = 0;; i++) {
        char nsdoc[64], epdoc[160];
        snprintf(nsdoc, sizeof nsdoc, "{\"Id\":\"k%d\"}", i);
        snprintf(epdoc, sizeof epdoc,
                 "{\"Name\":\"k%d\",\"HostComputeNetwork\":\"k9\",\"HostComputeNamespace\":\"k%d\"}", i, i);
        free(hcs_net_namespace_create(n, nsdoc, NULL));
        free(hcs_net_endpoint_create(n, epdoc, NULL));
        if (i % 3 == 0) continue; /* leave some behind */
        snprintf(nsdoc, sizeof nsdoc, "k%d", i);
        hcs_net_namespace_delete(n, nsdoc, NULL);
        hcs_net_endpoint_delete(n, nsdoc, NULL);
      }
    }
    usleep(20000 + (useconds_t)(round * 17000));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  net = hcs_net_open(root, &err);
  ok(net != NULL, "reopen after 5 kill -9");
  char *text = hcs_net_namespace_list(net, false, &err);
  json_t *nss = json_loads(text ? text : "[]", JSON_DECODE_ANY, NULL);
  free(text);
  size_t i;
  json_t *x;
  int bad = 0;
  json_array_foreach(nss, i, x) bad +=
      hcs_net_namespace_delete(net, json_string_value(json_object_get(x, "Id")), &err) < 0;
  text = hcs_net_endpoint_list(net, NULL, &err);
  json_t *eps = json_loads(text ? text : "[]", JSON_DECODE_ANY, NULL);
  free(text);
  json_array_foreach(eps, i, x) bad +=
      hcs_net_endpoint_delete(net, json_string_value(json_object_get(x, "Id")), &err) < 0;
  is_int(bad, 0, "everything left (%zu compartments, %zu endpoints) deletes cleanly", json_array_size(nss),
         json_array_size(eps));
  hcs_error_release(&err);
  json_decref(nss);
  json_decref(eps);
  char *report = hcs_net_reconcile(net, &err);
  ok(report != NULL, "reconcile once more: %s", report ? report : hcs_error_message(err));
  free(report);
  cleanup_free char *ipam = hcs_xasprintf("%s/run/net/ipam", root);
  char *out = sh("find %s -type f | wc -l", ipam);
  is_int(atoi(out), 0, "no lease leaked by the crashes");
  free(out);
  cleanup_free char *nsdir = hcs_xasprintf("%s/run/netns", root);
  is_int(count_dir(nsdir), 0, "no netns leaked by the crashes");
  out = sh("find %s/net %s/run/net -name '*.tmp.*' | wc -l", root, root);
  is_int(atoi(out), 0, "no temporary file left");
  free(out);
  for (int t = 0; t < 100 && count_links() != links; t++)
    usleep(50000);
  is_int(count_links(), links, "no veth leaked by the crashes");
  ok(hcs_net_network_delete(net, "k9", false, &err) == 0, "delete network k9");
  hcs_error_release(&err);
  hcs_net_close(net);
}

/* A reboot keeps the state root (networks) and takes the run root (tmpfs:
 * compartments, endpoints, leases) and every kernel object: the bridge and
 * the nftables table.  The next endpoint sets the network up again. */
static void test_reboot(void) {
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  char *doc =
      expect_ok(hcs_net_network_create(
                    net, "{\"Name\":\"rb\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.44.0.0/24\"}]}]}", &err),
                &err, "create network rb");
  json_t *d = json_loads(doc ? doc : "{}", 0, NULL);
  const char *bridge = json_string_value(json_object_get(json_object_get(d, "Linux"), "Bridge"));
  hcs_net_close(net);
  char *out = sh("ip link del %s && nft delete table %s && rm -rf %s/run && echo rebooted", bridge, table, root);
  has_substr(out, "rebooted", "simulate a reboot: bridge, nftables table and run root gone");
  free(out);
  net = hcs_net_open(root, &err);
  ok(net != NULL, "open the store after the reboot");
  free(expect_ok(hcs_net_namespace_create(net, "{\"Id\":\"rb1\"}", &err), &err, "create a compartment"));
  char *ep =
      expect_ok(hcs_net_endpoint_create(net,
                                        "{\"Name\":\"rb1\",\"HostComputeNetwork\":\"rb\",\"HostComputeNamespace\":"
                                        "\"rb1\",\"Policies\":[{\"Type\":\"PortMapping\",\"Settings\":{"
                                        "\"InternalPort\":80,\"ExternalPort\":9444}}]}",
                                        &err),
                &err, "an endpoint on the persisted network sets it up again");
  has_substr(ep, "10.44.0.2", "with the network's first address");
  out = sh("ip -o addr show %s", bridge);
  has_substr(out, "10.44.0.1/24", "the bridge is back with the gateway address");
  free(out);
  out = sh("nft list ruleset");
  char sid[9];
  hcs_net_short_hash(json_string_value(json_object_get(d, "Id")), sid, 8);
  cleanup_free char *chain = hcs_xasprintf("chain p_%s", sid);
  has_substr(out, chain, "the network's NAT chain is back");
  has_substr(out, "9444", "and the endpoint's port mapping");
  free(out);
  char *path = hcs_net_namespace_path(net, "rb1", &err);
  out = sh("nsenter --net=%s busybox ping -c1 -W2 10.44.0.1 >/dev/null 2>&1 && echo reachable", path);
  has_substr(out, "reachable", "the container reaches its gateway");
  free(out);
  free(path);
  ok(hcs_net_namespace_delete(net, "rb1", &err) == 0 && hcs_net_endpoint_delete(net, "rb1", &err) == 0 &&
         hcs_net_network_delete(net, "rb", false, &err) == 0,
     "delete compartment, endpoint and network");
  hcs_error_release(&err);
  hcs_net_close(net);
  free(ep);
  free(doc);
  json_decref(d);
}

static char *network_with_mapping(hcs_net_t *net, const char *name, const char *subnet, int port) {
  hcs_error_t err = NULL;
  cleanup_free char *spec =
      hcs_xasprintf("{\"Name\":\"%s\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"%s\"}]}]}", name, subnet);
  free(expect_ok(hcs_net_network_create(net, spec, &err), &err, "create network"));
  cleanup_free char *ep = hcs_xasprintf("{\"Name\":\"%s-ep\",\"HostComputeNetwork\":\"%s\",\"Policies\":[{\"Type\":"
                                        "\"PortMapping\",\"Settings\":{\"InternalPort\":80,\"ExternalPort\":%d}}]}",
                                        name, name, port);
  return expect_ok(hcs_net_endpoint_create(net, ep, &err), &err, "create an endpoint with a port mapping");
}

/* Two state roots on one host (#14.2): each has a table of its own, and
 * deleting the last network of one leaves the other's NAT and port mappings
 * in place (with one shared table, it dropped them). */
static void test_two_roots(void) {
  hcs_error_t err = NULL;
  char other[64] = "/tmp/hcs-test.XXXXXX";
  if (mkdtemp(other) == NULL) return;
  hcs_net_t *a = hcs_net_open(root, &err), *b = hcs_net_open(other, &err);
  ok(a && b, "open two roots");
  if (!a || !b) return;
  ok(strcmp(a->table, b->table) != 0, "they name two tables (`%s`, `%s`)", a->table, b->table);
  cleanup_free char *alias = hcs_xasprintf("/tmp/../tmp/%s", other + 5);
  hcs_net_t *b2 = hcs_net_open(alias, &err);
  ok(b2 && strcmp(b2->table, b->table) == 0, "another spelling of a root names the same table");
  hcs_net_close(b2);
  free(network_with_mapping(a, "ra", "10.21.0.0/24", 9100));
  free(network_with_mapping(b, "rb", "10.22.0.0/24", 9200));
  char *out = sh("nft list ruleset");
  has_substr(out, "tcp . 9200 : 10.22.0.2 . 80", "root B's mapping is in place");
  free(out);
  ok(hcs_net_network_delete(b, "rb", true, &err) == 0, "delete root B's last network");
  hcs_error_release(&err);
  out = sh("nft list ruleset");
  has_substr(out, "tcp . 9100 : 10.21.0.2 . 80", "root A's port mapping is still there");
  has_substr(out, "10.21.0.0/24 : jump p_", "root A's masquerade is still there");
  cleanup_free char *btable = hcs_xasprintf("table %s ", b->table);
  ok(strstr(out, btable) == NULL, "root B's table went with its last network");
  free(out);
  /* The same Id in two roots names the same bridge: the second is refused,
   * not given the first one's bridge. */
  free(expect_ok(
      hcs_net_network_create(
          a, "{\"Id\":\"same\",\"Name\":\"sa\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.24.0.0/24\"}]}]}",
          &err),
      &err, "a network with a given Id in root A"));
  expect_fail(
      hcs_net_network_create(
          b, "{\"Id\":\"same\",\"Name\":\"sb\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.25.0.0/24\"}]}]}",
          &err),
      &err, "exists already", "the same Id in root B");
  out = sh("ip -o addr show");
  has_substr(out, "10.24.0.1/24", "root A's bridge keeps its gateway");
  ok(strstr(out, "10.25.0.1") == NULL, "and got no address of root B's");
  free(out);
  ok(hcs_net_network_delete(a, "sa", false, &err) == 0, "delete it");
  hcs_error_release(&err);
  ok(hcs_net_network_delete(a, "ra", true, &err) == 0, "delete root A's network");
  hcs_error_release(&err);
  hcs_net_close(a);
  hcs_net_close(b);
  cleanup_free char *cmd = hcs_xasprintf("rm -rf %s", other);
  if (system(cmd) != 0) ok(0, "remove the second root");
}

/* Upgrade from the table `ip hcs` all roots shared before: opening the
 * store moves this root's networks and endpoint policies into its own
 * table; another root's objects stay in the old table. */
static void test_upgrade(void) {
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  char *ep = network_with_mapping(net, "up", "10.23.0.0/24", 9300);
  hcs_net_close(net);
  free(ep);
  char *out = sh("nft list table %1$s | sed 's/^table ip hcs[0-9a-f]*/table ip hcs/' > %2$s/old.nft && "
                 "nft delete table %1$s && nft -f %2$s/old.nft && rm -f %2$s/run/net/nftables %2$s/old.nft && "
                 "nft add element ip hcs bridges '{ \"hcsforeign\" }' && echo old",
                 table, root);
  has_substr(out, "old", "simulate the shared table of an earlier version, with another root's bridge in it");
  free(out);
  net = hcs_net_open(root, &err);
  ok(net != NULL, "open the store with the new version");
  out = sh("nft list table %s", table);
  has_substr(out, "tcp . 9300 : 10.23.0.2 . 80", "the endpoint's mapping moved into the root's table");
  has_substr(out, "10.23.0.0/24 : jump p_", "and the network's masquerade");
  free(out);
  out = sh("nft list table ip hcs");
  ok(strstr(out, "9300") == NULL && strstr(out, "chain n_") == NULL, "the shared table no longer holds them");
  has_substr(out, "hcsforeign", "the other root's objects are left alone");
  free(out);
  ok(hcs_net_network_delete(net, "up", true, &err) == 0, "delete the network");
  hcs_error_release(&err);
  hcs_net_close(net);
  if (system("nft delete table ip hcs") != 0) ok(0, "remove the simulated old table");
}

/* The table goes with the root's last bridged network, even while a network
 * without a bridge (None) is left. */
static void test_table_lifetime(void) {
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  free(expect_ok(hcs_net_network_create(net, "{\"Name\":\"none1\",\"Type\":\"None\"}", &err), &err,
                 "create a None network"));
  free(expect_ok(hcs_net_network_create(net, "{\"Name\":\"br1\"}", &err), &err, "and a NAT network"));
  ok(nft_table_exists(), "the NAT network made the table");
  ok(hcs_net_network_delete(net, "br1", false, &err) == 0, "delete the NAT network");
  hcs_error_release(&err);
  ok(!nft_table_exists(), "the table went with it, though the None network is left");
  ok(hcs_net_network_delete(net, "none1", false, &err) == 0, "delete the None network");
  hcs_error_release(&err);
  hcs_net_close(net);
}

static bool is_mountpoint(const char *dir) {
  char *out = sh("mountpoint -q %s && echo yes", dir);
  bool yes = strstr(out, "yes") != NULL;
  free(out);
  return yes;
}

/* The netns directory's mount goes when no compartment is left, and only
 * then: hcs_netns_dir_release reads the directory a few entries at a time,
 * so it must find an entry beyond its first buffer and not miss one. */
static void test_netns_dir_release(void) {
  cleanup_free char *dir = hcs_xasprintf("%s/nsdir", root);
  char *out = sh("mkdir -p %s && mount --bind %s %s && echo mounted", dir, dir, dir);
  has_substr(out, "mounted", "a directory mounted on itself");
  free(out);
  for (int i = 0; i < 200; i++) {
    cleanup_free char *f = hcs_xasprintf("%s/%0200d", dir, i);
    close(open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  }
  ok(!hcs_netns_dir_release(dir), "200 entries: kept");
  for (int i = 0; i < 199; i++) {
    cleanup_free char *f = hcs_xasprintf("%s/%0200d", dir, i);
    unlink(f);
  }
  ok(!hcs_netns_dir_release(dir), "one entry left: kept");
  ok(is_mountpoint(dir), "still mounted");
  cleanup_free char *last = hcs_xasprintf("%s/%0200d", dir, 199);
  unlink(last);
  ok(hcs_netns_dir_release(dir), "empty: released");
  ok(!is_mountpoint(dir), "and unmounted");
  rmdir(dir);
}

/* Links come and go while a dump runs (other systems starting and
 * stopping): the kernel marks the dump interrupted.  It is started again,
 * and its rest never answers the socket's next request. */
static void test_dump_interrupted(void) {
  cleanup_free char *batch = hcs_xasprintf("%s/dummies.batch", root);
  cleanup_free char *run_batch = hcs_xasprintf("ip -batch %s", batch);
  FILE *f = fopen(batch, "w");
  if (!f) return;
  for (int i = 0; i < 300; i++)
    fprintf(f, "link add hcsdd%d type bridge\n", i);
  fclose(f);
  ok(system(run_batch) == 0, "300 links to dump");
  pid_t churn = fork();
  if (churn == 0) {
    execl("/bin/sh", "sh", "-c", "while :; do ip link add hcsddx type bridge; ip link del hcsddx; done", (char *)NULL);
    _exit(127);
  }
  hcs_error_t err = NULL;
  struct hcs_nl *nl = hcs_nl_open(-1, &err);
  int dumps = 0, lookups = 0;
  for (int i = 0; i < 150 && nl; i++) {
    json_t *links = hcs_nl_dump_interfaces(nl, &err);
    if (links && json_array_size(links) >= 301) dumps++;
    if (!links) printf("#   dump %d: %s\n", i, hcs_error_message(err)), hcs_error_release(&err);
    json_decref(links);
    if (hcs_nl_link_index(nl, "lo", &err) == 1) lookups++;
    hcs_error_release(&err);
  }
  kill(churn, SIGKILL);
  waitpid(churn, NULL, 0);
  is_int(dumps, 150, "every dump completes while links change");
  is_int(lookups, 150, "and the request after each gets its own answer");
  if (nl) hcs_nl_close(nl);
  f = fopen(batch, "w");
  if (f) {
    for (int i = 0; i < 300; i++)
      fprintf(f, "link del hcsdd%d\n", i);
    fclose(f);
  }
  ok(system(run_batch) == 0, "links removed");
  if (system("ip link del hcsddx 2>/dev/null")) { /* absent: fine */
  }
  unlink(batch);
}

int main(void) {
  if (geteuid() != 0) {
    printf("1..0 # SKIP needs root\n");
    return 0;
  }
  /* Our own "host": nothing below touches the real host's network. */
  if (unshare(CLONE_NEWNET) < 0) {
    perror("unshare");
    return 1;
  }
  if (system("ip link set lo up") != 0) return 1;
  strcpy(root, "/tmp/hcs-test.XXXXXX");
  if (mkdtemp(root) == NULL) return 1;
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  ok(net != NULL, "open the network store");
  if (net == NULL) return tap_done();
  snprintf(table, sizeof table, "%s", net->table);
  test_validation(net);
  test_plumbing(net);
  test_bridge_mac(net);
  test_modify_and_bridges(net);
  const char *n = getenv("HCS_NET_CYCLES");
  test_cycles(net, n ? atoi(n) : 500);
  hcs_net_close(net);
  test_reclaim();
  test_kill9();
  test_reboot();
  test_two_roots();
  test_upgrade();
  test_table_lifetime();
  test_netns_dir_release();
  test_dump_interrupted();
  ok(!nft_table_exists(), "the nftables table is gone with the last network");
  char *links = sh("ip -o link show | grep -cE ': (hcs|vh)'");
  is_int(atoi(links), 0, "no hcs bridge or veth left");
  free(links);
  cleanup_free char *mounts = sh("grep -c ' %s' /proc/self/mountinfo", root);
  is_int(atoi(mounts), 0, "no mount left under the root (the netns directory went with the last compartment)");
  cleanup_free char *cmd = hcs_xasprintf("rm -rf %s", root);
  if (system(cmd) != 0) return 1;
  return tap_done();
}
