/* Endpoint names and host ports stay unique through their claim files
 * (src/net/claims.c) instead of a scan of every endpoint document, and
 * IPAM's hint still hands out the lowest free address: mappings on one
 * address and on all, stale claims left by a killed create, a store from
 * before the claims (indexed from its documents), a lost hint.  In a
 * private network namespace, as test_net. */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/net.h"
#include "net/internal.h"
#include "tap.h"

static char root[64];

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

/* {"Name":name,"HostComputeNetwork":"cl"} with one TCP mapping of `port` (0:
 * none) on `vip` (NULL: all addresses). */
static char *endpoint(hcs_net_t *net, const char *name, int port, const char *vip, hcs_error_t *err) {
  char doc[512];
  if (port == 0)
    snprintf(doc, sizeof doc, "{\"Name\":\"%s\",\"HostComputeNetwork\":\"cl\"}", name);
  else
    snprintf(doc, sizeof doc,
             "{\"Name\":\"%s\",\"HostComputeNetwork\":\"cl\",\"Policies\":[{\"Type\":\"PortMapping\",\"Settings\":"
             "{\"Protocol\":\"TCP\",\"InternalPort\":80,\"ExternalPort\":%d%s%s%s}}]}",
             name, port, vip ? ",\"VIP\":\"" : "", vip ? vip : "", vip ? "\"" : "");
  return hcs_net_endpoint_create(net, doc, err);
}

static void del(hcs_net_t *net, const char *name) {
  hcs_error_t err = NULL;
  ok(hcs_net_endpoint_delete(net, name, &err) == 0, "delete %s", name);
  hcs_error_release(&err);
}

static void test_ports(hcs_net_t *net) {
  hcs_error_t err = NULL;
  char *a = expect_ok(endpoint(net, "a", 8080, NULL, &err), &err, "a maps 8080 on all addresses");
  expect_fail(endpoint(net, "b", 8080, "10.77.9.1", &err), &err, "host port tcp/8080 is already mapped by endpoint `a`",
              "8080 on one address while a has all");
  char *c = expect_ok(endpoint(net, "c", 9090, "10.77.9.1", &err), &err, "c maps 9090 on 10.77.9.1");
  char *d = expect_ok(endpoint(net, "d", 9090, "10.77.9.2", &err), &err, "d maps 9090 on another address");
  expect_fail(endpoint(net, "e", 9090, "10.77.9.2", &err), &err, "already mapped by endpoint `d`",
              "9090 on d's address");
  /* c or d, whichever the directory lists first */
  expect_fail(endpoint(net, "e", 9090, NULL, &err), &err, "host port tcp/9090 is already mapped by endpoint",
              "9090 on all addresses");
  /* Released with the endpoint: the port is free again. */
  del(net, "a");
  char *b = expect_ok(endpoint(net, "b", 8080, "10.77.9.1", &err), &err, "8080 is free once a is deleted");
  /* A create killed after its claim: the claim names an endpoint that does
   * not exist, and is taken over. */
  cleanup_free char *dir = hcs_xasprintf("%s/run/net/claims/ports/tcp-7070", root);
  cleanup_free char *cmd = hcs_xasprintf("mkdir -p %s && printf killed-create > %s/any", dir, dir);
  ok(system(cmd) == 0, "a stale claim of tcp/7070");
  char *f = expect_ok(endpoint(net, "f", 7070, NULL, &err), &err, "a stale claim does not hold the port");
  /* Modify: add a port held by another, then one of its own twice. */
  const char *add8080 =
      "{\"RequestType\":\"Add\",\"ResourceType\":\"Policy\",\"Settings\":{\"Policies\":[{\"Type\":"
      "\"PortMapping\",\"Settings\":{\"Protocol\":\"TCP\",\"InternalPort\":80,\"ExternalPort\":8080}}]}}";
  expect_fail(hcs_net_endpoint_modify(net, "f", add8080, &err), &err, "already mapped by endpoint `b`",
              "modify adding b's port");
  const char *add7070 =
      "{\"RequestType\":\"Add\",\"ResourceType\":\"Policy\",\"Settings\":{\"Policies\":[{\"Type\":"
      "\"PortMapping\",\"Settings\":{\"Protocol\":\"TCP\",\"InternalPort\":81,\"ExternalPort\":7070}}]}}";
  expect_fail(hcs_net_endpoint_modify(net, "f", add7070, &err), &err, "already mapped by endpoint `f`",
              "modify adding its own port again");
  const char *rm7070 =
      "{\"RequestType\":\"Remove\",\"ResourceType\":\"Policy\",\"Settings\":{\"Policies\":[{\"Type\":"
      "\"PortMapping\",\"Settings\":{\"Protocol\":\"TCP\",\"InternalPort\":80,\"ExternalPort\":7070}}]}}";
  char *m = expect_ok(hcs_net_endpoint_modify(net, "f", rm7070, &err), &err, "modify removes f's mapping");
  char *g = expect_ok(endpoint(net, "g", 7070, NULL, &err), &err, "and the port is free for another");
  expect_fail(endpoint(net, "g", 0, NULL, &err), &err, "the name is already used by endpoint", "a name twice");
  /* Found by name through its claim, and a name never claimed is unknown. */
  char *q = expect_ok(hcs_net_endpoint_query(net, "g", &err), &err, "query g by name");
  has_substr(q, "\"Name\":\"g\"", "the query finds g");
  expect_fail(hcs_net_endpoint_query(net, "nobody", &err), &err, "no such id or name", "an unknown name");
  free(q);

  /* A store from before the claims: indexed from the documents at the next
   * create, so b, c, d and g still hold their ports and names. */
  cleanup_free char *rm = hcs_xasprintf("rm -rf %s/run/net/claims", root);
  ok(system(rm) == 0, "drop the claims (a store from before them)");
  expect_fail(endpoint(net, "h", 7070, NULL, &err), &err, "already mapped by endpoint `g`", "g's port after indexing");
  expect_fail(endpoint(net, "c", 0, NULL, &err), &err, "the name is already used by endpoint",
              "c's name after indexing");
  for (const char *const *n = (const char *const[]){"b", "c", "d", "f", "g", NULL}; *n; n++)
    del(net, *n);
  free(a), free(b), free(c), free(d), free(f), free(g), free(m);
}

static void expect_address(hcs_net_t *net, const char *name, const char *ip, const char *what) {
  hcs_error_t err = NULL;
  char *e = expect_ok(endpoint(net, name, 0, NULL, &err), &err, what);
  char want[64];
  snprintf(want, sizeof want, "\"IpAddress\":\"%s\"", ip);
  has_substr(e, want, "%s gets %s", name, ip);
  free(e);
}

static void test_ipam(hcs_net_t *net) {
  expect_address(net, "i1", "10.77.0.2", "first endpoint");
  expect_address(net, "i2", "10.77.0.3", "second");
  expect_address(net, "i3", "10.77.0.4", "third");
  del(net, "i2");
  expect_address(net, "i4", "10.77.0.3", "the lowest free address again after a delete");
  expect_address(net, "i5", "10.77.0.5", "then the next one");
  cleanup_free char *cmd = hcs_xasprintf("rm %s/run/net/ipam/*/.next", root);
  ok(system(cmd) == 0, "lose the hint");
  del(net, "i1");
  expect_address(net, "i6", "10.77.0.2", "without a hint: the lowest free by a walk");
  expect_address(net, "i7", "10.77.0.6", "and past the taken ones");
  for (const char *const *n = (const char *const[]){"i3", "i4", "i5", "i6", "i7", NULL}; *n; n++)
    del(net, *n);
}

/* A Linux bridge takes 1023 ports: the next endpoint is refused, saying
 * so, and leaves no claim, lease or document behind. */
static void test_bridge_full(hcs_net_t *net) {
  hcs_error_t err = NULL;
  char *doc = expect_ok(hcs_net_network_query(net, "cl", &err), &err, "query cl");
  char *br = doc ? strstr(doc, "\"Bridge\":\"") : NULL;
  char bridge[32] = "";
  if (br) sscanf(br + 10, "%31[^\"]", bridge);
  free(doc);
  ok(*bridge != '\0', "the network's bridge: %s", bridge);
  cleanup_free char *batch = hcs_xasprintf("%s/fill.batch", root);
  FILE *f = fopen(batch, "w");
  for (int i = 0; f && i < HCS_NET_BRIDGE_MAX_PORTS; i++)
    fprintf(f, "link add dmy%d type veth peer name dmp%d\nlink set dmy%d master %s\n", i, i, i, bridge);
  if (f) fclose(f);
  cleanup_free char *fill = hcs_xasprintf("ip -batch %s", batch);
  ok(system(fill) == 0, "fill the bridge with %d veth ports", HCS_NET_BRIDGE_MAX_PORTS);
  char *ns = expect_ok(hcs_net_namespace_create(net, "{\"Id\":\"full\"}", &err), &err, "a compartment");
  free(ns);
  expect_fail(
      hcs_net_endpoint_create(
          net, "{\"Name\":\"one-too-many\",\"HostComputeNetwork\":\"cl\",\"HostComputeNamespace\":\"full\"}", &err),
      &err, "has all the 1023 ports a Linux bridge takes", "the 1024th port of the bridge");
  ok(hcs_net_namespace_delete(net, "full", &err) == 0, "delete the compartment");
  hcs_error_release(&err);
  cleanup_free char *drain = hcs_xasprintf("sed -n 's/^link add \\([^ ]*\\) .*/link del \\1/p' %s > %s.del && "
                                           "ip -batch %s.del && rm %s %s.del",
                                           batch, batch, batch, batch, batch);
  ok(system(drain) == 0, "remove the veth ports");
}

int main(void) {
  if (geteuid() != 0) {
    printf("1..0 # SKIP needs root\n");
    return 0;
  }
  if (unshare(CLONE_NEWNET) < 0 || system("ip link set lo up") != 0) {
    perror("unshare");
    return 1;
  }
  strcpy(root, "/tmp/hcs-test.XXXXXX");
  if (mkdtemp(root) == NULL) return 1;
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  ok(net != NULL, "open the network store");
  if (net == NULL) return tap_done();
  char *n = expect_ok(hcs_net_network_create(net,
                                             "{\"Name\":\"cl\",\"Type\":\"NAT\",\"Ipams\":[{\"Subnets\":[{"
                                             "\"IpAddressPrefix\":\"10.77.0.0/24\"}]}]}",
                                             &err),
                      &err, "create NAT network cl");
  free(n);
  test_ports(net);
  test_ipam(net);
  test_bridge_full(net);
  ok(hcs_net_network_delete(net, "cl", false, &err) == 0, "delete the network");
  hcs_error_release(&err);
  hcs_net_close(net);
  cleanup_free char *left = hcs_xasprintf("find %s/run/net -type f | wc -l", root);
  FILE *p = popen(left, "r");
  int files = -1;
  if (p) {
    if (fscanf(p, "%d", &files) != 1) files = -1;
    pclose(p);
  }
  is_int(files, 0, "no claim, lease or hint file left");
  cleanup_free char *cmd = hcs_xasprintf("rm -rf %s", root);
  if (system(cmd) != 0) return 1;
  return tap_done();
}
