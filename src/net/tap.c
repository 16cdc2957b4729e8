/* A VM's network adapter on an hcs endpoint: a persistent tap device named
 * after the endpoint (`hcst<hash>`), enslaved to the endpoint's network
 * bridge.  The endpoint keeps its address, port mappings and outbound NAT
 * (made when it was created, keyed by its address), so the guest that
 * takes that address and the endpoint's MAC is reached as a container
 * would be.  The tap outlives no VM: the VM's monitor removes it, and
 * delete does for a killed monitor. */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>

#include "net/internal.h"
#include "vm/vm.h"

void hcs_net_tap_name(const char *endpoint_id, char out[16]) {
  char h[11];
  hcs_net_short_hash(endpoint_id, h, 10);
  snprintf(out, 16, "hcst%s", h);
}

int hcs_net_tap_remove(const char *name, hcs_error_t *err) {
  struct hcs_nl *nl = hcs_nl_open(-1, err);
  if (nl == NULL) return -1;
  int r = hcs_nl_link_del(nl, name, err);
  hcs_nl_close(nl);
  return r;
}

static int make_tap(const char *name, hcs_error_t *err) {
  cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `/dev/net/tun`");
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) return hcs_error_make(err, errno, "create tap `%s`", name);
  if (ioctl(fd, TUNSETPERSIST, 1) < 0) return hcs_error_make(err, errno, "make tap `%s` persistent", name);
  return 0;
}

int hcs_net_vm_adapter(const char *root, const char *ref, const char *vm_id, hcs_vm_nic_t *nic, hcs_error_t *err) {
  hcs_net_t *net = hcs_net_open(root, err);
  if (net == NULL) return -1;
  int lock = hcs_net_lock(net, false, err), rc = -1;
  struct hcs_nl *nl = NULL;
  json_t *ep = NULL, *network = NULL;
  if (lock < 0) goto out;
  ep = hcs_net_find(net, "endpoints", ref, err);
  if (ep == NULL) {
    hcs_error_wrap(err, "network adapter `%s` of `%s`", nic->name, vm_id);
    goto out;
  }
  const char *id = json_string_value(json_object_get(ep, "Id"));
  const char *netid = json_string_value(json_object_get(ep, "HostComputeNetwork"));
  if (hcs_net_endpoint_attached(ep)) {
    hcs_error_make(err, EBUSY, "network adapter `%s`: endpoint `%s` is attached to namespace `%s`", nic->name, ref,
                   json_string_value(json_object_get(ep, "HostComputeNamespace")));
    goto out;
  }
  network = netid ? hcs_net_find(net, "networks", netid, err) : NULL;
  if (network == NULL) goto out;
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) goto out;
  /* A None network has no bridge: there is nothing to put a tap on. */
  if (ni.bridge == NULL) {
    hcs_error_make(err, EINVAL,
                   "network adapter `%s`: endpoint `%s` is on network `%s` of type %s, which has no bridge for a VM's "
                   "tap",
                   nic->name, ref, ni.name, ni.type);
    goto out;
  }
  if ((nl = hcs_nl_open(-1, err)) == NULL) goto out;
  int br = hcs_net_network_ensure(net, network, nl, err);
  if (br <= 0) {
    hcs_error_wrap(err, "network adapter `%s` on endpoint `%s`", nic->name, ref);
    goto out;
  }
  hcs_net_tap_name(id, nic->tap);
  int exists = hcs_nl_link_index(nl, nic->tap, err);
  if (exists < 0) goto out;
  if (exists > 0) {
    hcs_error_make(err, EBUSY, "network adapter `%s`: endpoint `%s` is in use by another VM (tap `%s`)", nic->name, ref,
                   nic->tap);
    goto out;
  }
  if (make_tap(nic->tap, err) < 0) goto out;
  int idx = hcs_nl_link_index(nl, nic->tap, err);
  if (idx <= 0 || hcs_nl_link_set(nl, idx, br, true, err) < 0) {
    if (idx == 0) hcs_error_make(err, ENODEV, "tap `%s` vanished", nic->tap);
    hcs_nl_link_del(nl, nic->tap, NULL);
    goto out;
  }
  /* The guest's address, for its kernel command line (`ip=`, read by the
   * kernel's IP autoconfiguration or by the guest's init). */
  json_t *ipc = json_array_get(json_object_get(ep, "IpConfigurations"), 0);
  const char *ip = json_string_value(json_object_get(ipc, "IpAddress"));
  json_int_t plen = json_integer_value(json_object_get(ipc, "PrefixLength"));
  if (ip) {
    struct in_addr mask = {htonl(hcs_net_mask((int)plen))};
    cleanup_free char *m = hcs_net_format_ip(mask);
    cleanup_free char *gw = ni.has_gateway ? hcs_net_format_ip(ni.gateway) : hcs_xstrdup("");
    nic->ip_param = hcs_xasprintf("ip=%s::%s:%s::eth0:off", ip, gw, m);
  }
  const char *mac = json_string_value(json_object_get(ep, "MacAddress"));
  if (nic->mac == NULL && mac) nic->mac = hcs_xstrdup(mac);
  rc = 0;
out:
  hcs_nl_close(nl);
  json_decref(ep);
  json_decref(network);
  if (lock >= 0) close(lock);
  hcs_net_close(net);
  return rc;
}
