/* Networks: the HNS model (networks, endpoints, namespaces, policies) on
 * netlink (libmnl) and nftables (libnftables).
 *
 * Documents are HCN-shaped JSON strings in and out:
 *   HostComputeNetwork   {Id, Name, Type: NAT|Transparent|L2Bridge|None,
 *                         Ipams[{Type, Subnets[{IpAddressPrefix, Routes[{NextHop, DestinationPrefix}]}]}],
 *                         Dns{Domain, Search, ServerList}, Policies[...]}
 *   HostComputeEndpoint  {Id, Name, HostComputeNetwork, HostComputeNamespace,
 *                         IpConfigurations[{IpAddress, PrefixLength}], MacAddress, Dns,
 *                         Policies[{Type: PortMapping|OutBoundNAT, Settings{...}}]}
 *   HostComputeNamespace {Id, Type, Description, Path, Resources[{Type: Endpoint, Id}]}
 * Every call works relative to the calling thread's network namespace (the
 * "host"), so a test or an embedding program can run it inside another one.
 * Returned strings are malloc'd JSON; free them with free(). */
#ifndef HCS_NET_H
#define HCS_NET_H

#include <stdbool.h>

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_net_s hcs_net_t;

/* Open the network store under `<root>/net` (root NULL: $HCS_ROOT or
 * /var/lib/hcs); creates it if missing and reconciles IPAM leases (leases
 * whose endpoint vanished, e.g. after a crash, are reclaimed). */
HCS_EXPORT hcs_net_t *hcs_net_open(const char *root, hcs_error_t *err);
HCS_EXPORT void hcs_net_close(hcs_net_t *net);
/* Reclaim stale leases now; returns a JSON report {ReclaimedLeases:[...]}. */
HCS_EXPORT char *hcs_net_reconcile(hcs_net_t *net, hcs_error_t *err);

/* --- networks ------------------------------------------------------------ */
HCS_EXPORT char *hcs_net_network_create(hcs_net_t *net, const char *settings, hcs_error_t *err);
/* `ref` is an id or a name. */
HCS_EXPORT char *hcs_net_network_query(hcs_net_t *net, const char *ref, hcs_error_t *err);
HCS_EXPORT char *hcs_net_network_list(hcs_net_t *net, hcs_error_t *err);
/* request: {RequestType: Add|Remove, ResourceType: Policy, Settings: {Policies: [...]}}
 * (OutBoundNAT exceptions on NAT networks). */
HCS_EXPORT char *hcs_net_network_modify(hcs_net_t *net, const char *ref, const char *request, hcs_error_t *err);
/* Refused while endpoints exist unless force (which deletes them first). */
HCS_EXPORT int hcs_net_network_delete(hcs_net_t *net, const char *ref, bool force, hcs_error_t *err);

/* --- endpoints ----------------------------------------------------------- */
/* Allocates the address; when HostComputeNamespace is set the endpoint is
 * attached at once (veth created directly in that namespace). */
HCS_EXPORT char *hcs_net_endpoint_create(hcs_net_t *net, const char *settings, hcs_error_t *err);
HCS_EXPORT char *hcs_net_endpoint_query(hcs_net_t *net, const char *ref, hcs_error_t *err);
/* network: NULL for all, else an id or name to filter on. */
HCS_EXPORT char *hcs_net_endpoint_list(hcs_net_t *net, const char *network, hcs_error_t *err);
/* request: {RequestType: Add|Remove, ResourceType: Policy, Settings: {Policies: [PortMapping...]}} */
HCS_EXPORT char *hcs_net_endpoint_modify(hcs_net_t *net, const char *ref, const char *request, hcs_error_t *err);
HCS_EXPORT int hcs_net_endpoint_delete(hcs_net_t *net, const char *ref, hcs_error_t *err);
/* Plug the endpoint into a namespace (id or absolute path of a netns file). */
HCS_EXPORT char *hcs_net_endpoint_attach(hcs_net_t *net, const char *ref, const char *ns, hcs_error_t *err);
HCS_EXPORT char *hcs_net_endpoint_detach(hcs_net_t *net, const char *ref, hcs_error_t *err);

/* --- namespaces (compartments) ------------------------------------------- */
/* settings: {Id?, Type?, Description?, ContainerId?} ("Container_<ContainerId>"
 * becomes the description).  The netns is bind-mounted at `<run root>/netns/<Id>`. */
HCS_EXPORT char *hcs_net_namespace_create(hcs_net_t *net, const char *settings, hcs_error_t *err);
/* details adds Interfaces[] (with addresses) and Routes[] read inside the netns. */
HCS_EXPORT char *hcs_net_namespace_query(hcs_net_t *net, const char *id, bool details, hcs_error_t *err);
HCS_EXPORT char *hcs_net_namespace_list(hcs_net_t *net, bool details, hcs_error_t *err);
/* Detaches (deletes) the endpoints attached to it, then removes the netns. */
HCS_EXPORT int hcs_net_namespace_delete(hcs_net_t *net, const char *id, hcs_error_t *err);
/* The netns file of a namespace id (for Container.Networking.Namespace). */
HCS_EXPORT char *hcs_net_namespace_path(hcs_net_t *net, const char *id, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
