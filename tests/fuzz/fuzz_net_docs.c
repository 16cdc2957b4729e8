/* libFuzzer harness: the network and endpoint documents (HNS
 * HostComputeNetwork, HostComputeEndpoint, and modify requests) through the
 * real create/modify/delete calls -- bridges, veths, nftables tables and
 * all -- in a private network and mount namespace (fuzz_util.h), so nothing
 * reaches the host.  Input: up to four parts separated by "\n@@@\n": the
 * network document, the endpoint document, a modify request for the
 * network, one for the endpoint.  Whatever was created is deleted and the
 * state root wiped after each run. */
#include <jansson.h>

#include "fuzz_util.h"
#include "hcs/net.h"

static char root[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_sandbox(true, 64);
  snprintf(root, sizeof root, "%s/root", fz_dir);
  return 0;
}

static char *id_of(const char *doc) {
  if (doc == NULL) return NULL;
  json_t *j = json_loads(doc, 0, NULL);
  const char *id = json_string_value(json_object_get(j, "Id"));
  char *out = id ? strdup(id) : NULL;
  json_decref(j);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *p[4];
  size_t l[4];
  int n = fz_split(data, size, "\n@@@\n", p, l, 4);
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(root, &err);
  if (net == NULL) {
    fprintf(stderr, "open net: %s\n", hcs_error_message(err));
    abort();
  }
  char *nd = hcs_net_network_create(net, p[0], &err);
  fz_report(nd, err);
  hcs_error_release(&err);
  char *nid = id_of(nd);
  char *ed = n > 1 ? hcs_net_endpoint_create(net, p[1], &err) : NULL;
  if (n > 1) fz_report(ed, err);
  hcs_error_release(&err);
  char *eid = id_of(ed);
  if (nid && n > 2) free(hcs_net_network_modify(net, nid, p[2], &err));
  hcs_error_release(&err);
  if (eid && n > 3) free(hcs_net_endpoint_modify(net, eid, p[3], &err));
  hcs_error_release(&err);
  free(hcs_net_network_list(net, &err));
  hcs_error_release(&err);
  if (eid && hcs_net_endpoint_delete(net, eid, &err) < 0) {
    fprintf(stderr, "delete endpoint: %s\n", hcs_error_message(err));
    abort(); /* what create made, delete must undo */
  }
  if (nid && hcs_net_network_delete(net, nid, true, &err) < 0) {
    fprintf(stderr, "delete network: %s\n", hcs_error_message(err));
    abort();
  }
  hcs_net_close(net);
  free(nd);
  free(ed);
  free(nid);
  free(eid);
  fz_parts_free(p, n);
  fz_wipe(fz_dir);
  return 0;
}
