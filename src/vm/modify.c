/* Live changes of a VM: the memory balloon ({"Memory": {"SizeInMB": N}}),
 * hot-plug of a disk, a network adapter or a Plan9 share (hcsshim's ModifySettingRequest:
 * {"ResourcePath": "VirtualMachine/Devices/Scsi/0/Attachments/1" or
 * "VirtualMachine/Devices/Plan9/Shares", "RequestType": "Add"|"Remove",
 * "Settings": {...}}).  config.json follows, so a save carries the devices
 * a restore must recreate. */
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "compute/config_util.h"
#include "vm/vm.h"

static int save_config(hcs_system_t *cs, json_t *doc, hcs_error_t *err) {
  cleanup_free char *cp = hcs_xasprintf("%s/config.json", cs->dir);
  if (hcs_state_write_json(cp, doc, err) < 0) return -1;
  json_decref(cs->config);
  cs->config = json_incref(doc);
  return 0;
}

static json_t *devices(json_t *doc) {
  json_t *vm = json_object_get(doc, "VirtualMachine");
  json_t *d = json_object_get(vm, "Devices");
  if (!json_is_object(d)) json_object_set_new(vm, "Devices", d = json_object());
  return d;
}

static int balloon(hcs_system_t *cs, hcs_qmp_t *q, json_t *mem, json_t *doc, hcs_error_t *err) {
  json_t *size = json_object_get(mem, "SizeInMB");
  json_int_t max = json_integer_value(json_object_get(cs->state, "MemorySizeInMB"));
  if (!json_is_object(mem) || json_object_size(mem) != 1 || !json_is_integer(size) || json_integer_value(size) < 16 ||
      json_integer_value(size) > max)
    return hcs_error_make(err, 0,
                          "invalid modify request: `Memory.SizeInMB`: expected an integer from 16 to %lld (the VM's "
                          "memory; the balloon only shrinks it)",
                          (long long)max);
  json_t *r = hcs_qmp_execute(q, "balloon", json_pack("{s:I}", "value", json_integer_value(size) << 20), -1, err);
  if (r == NULL) return -1;
  json_decref(r);
  json_t *st = json_object_get(json_object_get(json_object_get(doc, "VirtualMachine"), "ComputeTopology"), "Memory");
  (void)st; /* the configured size stays: the balloon is the guest's current size */
  return 0;
}

/* Wait for the guest to release a device (device_del is a request the
 * guest's ACPI hot-plug answers). */
static int wait_gone(hcs_qmp_t *q, const char *id, hcs_error_t *err) {
  for (int i = 0; i < 300; i++) {
    json_t *r = hcs_qmp_execute(q, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"), -1, err);
    if (r == NULL) return -1;
    bool there = false;
    json_t *e;
    size_t k;
    json_array_foreach(r, k, e) if (strcmp(json_string_value(json_object_get(e, "name")) ?: "", id) == 0) there = true;
    json_decref(r);
    if (!there) return 0;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return hcs_error_make(err, ETIMEDOUT, "the guest did not release `%s` within 30 s", id);
}

static int disk_change(hcs_qmp_t *q, json_t *doc, const char *ctl, const char *lun, bool add, json_t *settings,
                       hcs_error_t *err) {
  json_t *scsi = json_object_get(devices(doc), "Scsi");
  if (!json_is_object(scsi)) json_object_set_new(devices(doc), "Scsi", scsi = json_object());
  json_t *c = json_object_get(scsi, ctl);
  if (!json_is_object(c)) json_object_set_new(scsi, ctl, c = json_pack("{s:{}}", "Attachments"));
  json_t *att = json_object_get(c, "Attachments");
  cleanup_free char *name = hcs_xasprintf("%s-%s", ctl, lun);
  cleanup_free char *node = hcs_xasprintf("disk-%s", name), *dev = hcs_xasprintf("dev-disk-%s", name);
  if (!add) {
    if (json_object_get(att, lun) == NULL)
      return hcs_error_make(err, ENOENT, "no disk at `VirtualMachine/Devices/Scsi/%s/Attachments/%s`", ctl, lun);
    json_t *r = hcs_qmp_execute(q, "device_del", json_pack("{s:s}", "id", dev), -1, err);
    if (r == NULL || wait_gone(q, dev, err) < 0) return -1;
    json_decref(r);
    /* The device's backend lets go of the node a moment after the device
     * left the tree (a loaded host): a node still busy is asked again, or
     * a later add of the same disk finds a duplicate node name. */
    for (int i = 0; i < 50; i++) {
      hcs_error_t e = NULL;
      json_t *d = hcs_qmp_execute(q, "blockdev-del", json_pack("{s:s}", "node-name", node), -1, &e);
      const char *m = d ? "" : hcs_error_message(e);
      bool busy = strstr(m, "in use") || strstr(m, "busy");
      json_decref(d);
      hcs_error_release(&e);
      if (!busy) break;
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    /* A disk given on the command line is a -drive (a BlockBackend): it
     * went with its device. */
    json_object_del(att, lun);
    return 0;
  }
  if (json_object_get(att, lun))
    return hcs_error_make(err, EEXIST, "a disk is at `VirtualMachine/Devices/Scsi/%s/Attachments/%s`", ctl, lun);
  hcs_vm_disk_t d = {0};
  cleanup_free char *where = hcs_xasprintf("Settings");
  if (hcs_vm_disk_parse(settings, where, name, &d, err) < 0) {
    hcs_vm_disk_clear(&d);
    return -1;
  }
  json_t *args = json_pack("{s:s,s:s,s:b,s:{s:s,s:s}}", "driver", d.format, "node-name", node, "read-only", d.read_only,
                           "file", "driver", "file", "filename", d.path);
  hcs_vm_disk_clear(&d);
  json_t *r = hcs_qmp_execute(q, "blockdev-add", args, -1, err);
  if (r == NULL) return -1;
  json_decref(r);
  r = hcs_qmp_execute(q, "device_add", json_pack("{s:s,s:s,s:s}", "driver", "virtio-blk-pci", "drive", node, "id", dev),
                      -1, err);
  if (r == NULL) {
    json_decref(hcs_qmp_execute(q, "blockdev-del", json_pack("{s:s}", "node-name", node), -1, NULL));
    return -1;
  }
  json_decref(r);
  json_object_set(att, lun, settings);
  return 0;
}

/* state.json's Taps (what the monitor's exit and a forced delete remove)
 * and NicTaps (adapter name -> tap).  A hot-added tap is listed before it
 * is made, so a crash in between leaves no tap that nothing removes. */
static int set_tap(hcs_system_t *cs, const char *name, const char *tap, bool add, hcs_error_t *err) {
  json_t *taps = json_object_get(cs->state, "Taps"), *by = json_object_get(cs->state, "NicTaps");
  if (!json_is_array(taps)) json_object_set_new(cs->state, "Taps", taps = json_array());
  if (!json_is_object(by)) json_object_set_new(cs->state, "NicTaps", by = json_object());
  size_t i;
  json_t *t;
  json_array_foreach(taps, i, t) if (strcmp(json_string_value(t) ?: "", tap) == 0) {
    json_array_remove(taps, i);
    break;
  }
  json_object_del(by, name);
  if (add) {
    json_array_append_new(taps, json_string(tap));
    json_object_set_new(by, name, json_string(tap));
  }
  cleanup_free char *sp = hcs_xasprintf("%s/state.json", cs->dir);
  return hcs_state_write_json(sp, cs->state, err);
}

/* The adapter of this VM whose tap is `tap` (state.json's NicTaps), or NULL. */
static const char *adapter_of_tap(json_t *state, const char *tap) {
  const char *name;
  json_t *t;
  json_object_foreach(json_object_get(state, "NicTaps"), name, t) {
    if (strcmp(json_string_value(t) ?: "", tap) == 0) return name;
  }
  return NULL;
}

/* A network adapter on an hcs endpoint: a tap on the endpoint's network
 * bridge (src/net/tap.c, which refuses an unknown endpoint, one in use,
 * or a network whose bridge is missing), a tap netdev and a virtio-net
 * device with the endpoint's MAC. */
static int nic_change(hcs_system_t *cs, hcs_qmp_t *q, json_t *doc, const char *name, bool add, json_t *settings,
                      hcs_error_t *err) {
  json_t *nics = json_object_get(devices(doc), "NetworkAdapters");
  if (!json_is_object(nics)) json_object_set_new(devices(doc), "NetworkAdapters", nics = json_object());
  cleanup_free char *netdev = hcs_xasprintf("net-%s", name), *dev = hcs_xasprintf("dev-net-%s", name);
  if (!add) {
    json_t *cur = json_object_get(nics, name);
    if (cur == NULL) return hcs_error_make(err, ENOENT, "no network adapter `%s`", name);
    json_t *r = hcs_qmp_execute(q, "device_del", json_pack("{s:s}", "id", dev), -1, err);
    if (r == NULL || wait_gone(q, dev, err) < 0) return -1;
    json_decref(r);
    r = hcs_qmp_execute(q, "netdev_del", json_pack("{s:s}", "id", netdev), -1, err);
    if (r == NULL) return -1;
    json_decref(r);
    /* Its tap, recorded by name when it was added (or by the monitor
     * for the document's adapters). */
    char tap[16];
    snprintf(tap, sizeof tap, "%s",
             json_string_value(json_object_get(json_object_get(cs->state, "NicTaps"), name)) ?: "");
    if (tap[0] && (hcs_net_tap_remove(tap, err) < 0 || set_tap(cs, name, tap, false, err) < 0)) return -1;
    json_object_del(nics, name);
    return 0;
  }
  if (json_object_get(nics, name))
    return hcs_error_make(err, EEXIST, "a network adapter is at `VirtualMachine/Devices/NetworkAdapters/%s`", name);
  /* A paused guest's agent would answer its configuration only after a
   * resume: the modify would wait until then. */
  if (hcs_system_state(cs) == HCS_STATE_PAUSED && hcs_vm_exec_agent_ready(cs))
    return hcs_error_make(err, EBUSY,
                          "add network adapter `%s`: the VM is paused and its agent configures the adapter (resume it "
                          "first)",
                          name);
  static const char *const keys[] = {"EndpointId", "MacAddress", NULL};
  if (check_fields(settings, "invalid modify request", "Settings", keys, err) < 0) return -1;
  const char *ep = json_string_value(json_object_get(settings, "EndpointId"));
  json_t *macv = json_object_get(settings, "MacAddress");
  if (ep == NULL)
    return hcs_error_make(err, 0, "invalid modify request: `Settings.EndpointId`: expected the id of an hcs endpoint");
  if (macv && !json_is_string(macv))
    return hcs_error_make(err, 0, "invalid modify request: `Settings.MacAddress`: expected a MAC address");
  hcs_vm_nic_t n = {.name = (char *)name, .mac = macv ? hcs_xstrdup(json_string_value(macv)) : NULL};
  int rc = -1;
  json_t *r = NULL;
  if (hcs_net_vm_adapter(cs->root, ep, cs->id, &n, err) < 0) {
    /* The tap that made it busy may be this VM's own. */
    const char *held = n.tap[0] ? adapter_of_tap(cs->state, n.tap) : NULL;
    if (held)
      hcs_error_make(err, EEXIST, "network adapter `%s`: endpoint `%s` is already attached to this VM (adapter `%s`)",
                     name, ep, held);
    goto out;
  }
  if (set_tap(cs, name, n.tap, true, err) < 0) goto undo;
  r = hcs_qmp_execute(q, "netdev_add",
                      json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "tap", "id", netdev, "ifname", n.tap, "script", "no",
                                "downscript", "no"),
                      -1, err);
  if (r == NULL) goto undo;
  json_decref(r);
  for (char *p = n.mac; p && *p; p++)
    if (*p == '-') *p = ':';
  json_t *args = json_pack("{s:s,s:s,s:s}", "driver", "virtio-net-pci", "netdev", netdev, "id", dev);
  if (n.mac) json_object_set_new(args, "mac", json_string(n.mac));
  r = hcs_qmp_execute(q, "device_add", args, -1, err);
  if (r == NULL) {
    json_decref(hcs_qmp_execute(q, "netdev_del", json_pack("{s:s}", "id", netdev), -1, NULL));
    goto undo;
  }
  json_decref(r);
  if (hcs_vm_exec_configure_nic(cs, &n, err) < 0) {
    /* Not half-added: the device goes again (best effort: a guest that
     * never saw it may not answer the unplug). */
    json_t *d = hcs_qmp_execute(q, "device_del", json_pack("{s:s}", "id", dev), -1, NULL);
    if (d) wait_gone(q, dev, NULL);
    json_decref(d);
    json_decref(hcs_qmp_execute(q, "netdev_del", json_pack("{s:s}", "id", netdev), -1, NULL));
    goto undo;
  }
  json_object_set(nics, name, settings);
  rc = 0;
  goto out;
undo:
  hcs_net_tap_remove(n.tap, NULL);
  set_tap(cs, name, n.tap, false, NULL);
out:
  free(n.mac);
  free(n.ip_param);
  return rc;
}

/* A share given at create is a 9p device of its own (removed with
 * device_del; its fsdev stays in QEMU, which has no command to remove
 * one).  A share added at run time is a bind under the hcs-shares export
 * in QEMU's mount namespace (share.c), marked HotAdded in config.json so a
 * restore binds it again. */
static int share_change(hcs_system_t *cs, hcs_qmp_t *q, json_t *doc, bool add, json_t *settings, hcs_error_t *err) {
  json_t *p9 = json_object_get(devices(doc), "Plan9");
  if (!json_is_object(p9)) json_object_set_new(devices(doc), "Plan9", p9 = json_object());
  json_t *shares = json_object_get(p9, "Shares");
  if (!json_is_array(shares)) json_object_set_new(p9, "Shares", shares = json_array());
  const char *name = json_string_value(json_object_get(settings, "Name"));
  if (name == NULL) return hcs_error_make(err, 0, "invalid modify request: `Settings.Name`: expected a share name");
  size_t i, found = (size_t)-1;
  json_t *e;
  json_array_foreach(shares, i, e) if (strcmp(json_string_value(json_object_get(e, "Name")) ?: "", name) == 0) found =
      i;
  cleanup_free char *dev = hcs_xasprintf("dev-fs-%s", name);
  if (!add) {
    if (found == (size_t)-1) return hcs_error_make(err, ENOENT, "remove Plan9 share `%s`: no such share", name);
    if (json_is_true(json_object_get(json_array_get(shares, found), "HotAdded"))) {
      /* A paused guest's agent would answer only after a resume. */
      if (hcs_system_state(cs) == HCS_STATE_PAUSED && hcs_vm_exec_agent_ready(cs))
        return hcs_error_make(err, EBUSY,
                              "remove Plan9 share `%s`: the VM is paused and its agent unmounts the share (resume it "
                              "first)",
                              name);
      /* The guest's mounts first: the host's bind goes only when nothing
       * in the guest uses it. */
      if (hcs_vm_exec_unmount_share(cs, name, err) < 0 || hcs_vm_share_hot_remove(cs, name, err) < 0)
        return hcs_error_wrap(err, "remove Plan9 share `%s`", name);
      json_array_remove(shares, found);
      return 0;
    }
    json_t *r = hcs_qmp_execute(q, "device_del", json_pack("{s:s}", "id", dev), -1, err);
    if (r == NULL || wait_gone(q, dev, err) < 0) return -1;
    json_decref(r);
    json_array_remove(shares, found);
    return 0;
  }
  if (found != (size_t)-1) return hcs_error_make(err, EEXIST, "add Plan9 share `%s`: the name is in use", name);
  static const char *const keys[] = {"Name", "Path", "ReadOnly", NULL};
  if (check_fields(settings, "invalid modify request", "Settings", keys, err) < 0) return -1;
  hcs_vm_share_t sh = {0};
  int rc = hcs_vm_share_parse(settings, "Settings", &sh, err);
  if (rc == 0) rc = hcs_vm_share_hot_add(cs, sh.name, sh.host_path, sh.read_only, err);
  if (rc == 0) {
    json_array_append_new(shares, json_pack("{s:s,s:s,s:b,s:b}", "Name", sh.name, "Path", sh.host_path, "ReadOnly",
                                            sh.read_only, "HotAdded", 1));
    if (!hcs_vm_exec_agent_ready(cs))
      hcs_info("Plan9 share `%s` of `%s`: no guest agent answered; the guest sees it as `/%s` of the 9p tag `%s`", name,
               cs->id, name, HCS_VM_SHARES_TAG);
  }
  hcs_vm_share_clear(&sh);
  return rc < 0 ? hcs_error_wrap(err, "add Plan9 share `%s`", name) : 0;
}

static int resource_change(hcs_system_t *cs, hcs_qmp_t *q, json_t *req, json_t *doc, hcs_error_t *err) {
  static const char *const keys[] = {"ResourcePath", "RequestType", "Settings", NULL};
  if (check_fields(req, "invalid modify request", "", keys, err) < 0) return -1;
  const char *path = json_string_value(json_object_get(req, "ResourcePath"));
  const char *type = json_string_value(json_object_get(req, "RequestType"));
  json_t *settings = json_object_get(req, "Settings");
  if (type == NULL || (strcmp(type, "Add") && strcmp(type, "Remove")))
    return hcs_error_make(err, 0, "invalid modify request: `RequestType`: expected \"Add\" or \"Remove\"");
  bool add = strcmp(type, "Add") == 0;
  if (add && !json_is_object(settings))
    return hcs_error_make(err, 0, "invalid modify request: `Settings`: expected object");
  char ctl[32], lun[32];
  int n = 0;
  if (path &&
      sscanf(path, "VirtualMachine/Devices/Scsi/%31[A-Za-z0-9_-]/Attachments/%31[A-Za-z0-9_-]%n", ctl, lun, &n) == 2 &&
      path[n] == '\0')
    return disk_change(q, doc, ctl, lun, add, settings, err);
  if (path && strcmp(path, "VirtualMachine/Devices/Plan9/Shares") == 0)
    return share_change(cs, q, doc, add, settings, err);
  if (path && sscanf(path, "VirtualMachine/Devices/NetworkAdapters/%31[A-Za-z0-9_-]%n", ctl, &n) == 1 &&
      path[n] == '\0')
    return nic_change(cs, q, doc, ctl, add, settings, err);
  return hcs_error_make(
      err, 0,
      "invalid modify request: `ResourcePath`: expected VirtualMachine/Devices/Scsi/C/Attachments/L, "
      "VirtualMachine/Devices/NetworkAdapters/NAME or VirtualMachine/Devices/Plan9/Shares, got \"%s\"",
      path ? path : "");
}

int hcs_vm_modify(hcs_system_t *cs, json_t *req, hcs_error_t *err) {
  cleanup_json json_t *doc = json_deep_copy(cs->config);
  cleanup_free char *qmp = hcs_xasprintf("%s/qmp.sock", cs->dir);
  json_t *mem = json_object_get(req, "Memory");
  if (mem == NULL && json_object_get(req, "ResourcePath") == NULL)
    return hcs_error_make(err, 0, "invalid modify request: expected Memory or ResourcePath");
  if (mem && json_object_size(req) != 1) return hcs_error_make(err, 0, "invalid modify request: `Memory` comes alone");
  hcs_qmp_t *q = hcs_qmp_connect(qmp, 0, err);
  if (q == NULL) return hcs_error_wrap(err, "modify `%s`", cs->id);
  int r = mem ? balloon(cs, q, mem, doc, err) : resource_change(cs, q, req, doc, err);
  hcs_qmp_close(q);
  if (r < 0) return hcs_error_wrap(err, "modify `%s`", cs->id);
  if (!mem && save_config(cs, doc, err) < 0) return -1;
  hcs_system_emit(cs, "modified", json_incref(req));
  return 0;
}
