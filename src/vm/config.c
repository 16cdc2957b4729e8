/* The VirtualMachine section of a compute system document (hcsshim schema2
 * names: ComputeTopology, Chipset, Devices, RestoreState, StopOnReset),
 * parsed and validated into hcs_vm_config_t.  As for containers (the same
 * field getters, compute/config_util.h), unknown fields are refused and
 * every rejection names the JSON path, what was expected and what was
 * found. */
#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "compute/config_util.h"
#include "vm/vm.h"

/* A host file the VM reads (kernel, initrd, disk): an absolute path to an
 * existing regular file.  These paths come from the caller's document (as a
 * container's MappedDirectories), not from an image. */
static int check_file(const char *s, const char *path, const char *key, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s%s%s", path, *path ? "." : "", key);
  if (s[0] != '/')
    return hcs_error_make(err, 0, "invalid configuration: `%s`: expected an absolute path, got \"%s\"", p, s);
  struct stat st;
  if (stat(s, &st) < 0) return hcs_error_make(err, errno, "invalid configuration: `%s`: `%s` not found", p, s);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return hcs_error_make(err, 0, "invalid configuration: `%s`: `%s` is not a regular file", p, s);
  return 0;
}

void hcs_vm_disk_clear(hcs_vm_disk_t *d) {
  free(d->name);
  free(d->path);
  free(d->format);
  memset(d, 0, sizeof *d);
}

void hcs_vm_share_clear(hcs_vm_share_t *s) {
  free(s->name);
  free(s->host_path);
  memset(s, 0, sizeof *s);
}

static bool valid_name(const char *s) {
  if (*s == '\0' || strlen(s) > 31) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return false;
  return true;
}

int hcs_vm_disk_parse(json_t *v, const char *path, const char *name, hcs_vm_disk_t *d, hcs_error_t *err) {
  static const char *const keys[] = {"Type", "Path", "ReadOnly", "Format", NULL};
  if (!json_is_object(v)) return bad(err, path, "object", v);
  if (check_keys(v, path, keys, err) < 0) return -1;
  cleanup_free char *type = NULL;
  d->name = hcs_xstrdup(name);
  if (get_nonempty_str(v, path, "Type", &type, err) < 0 || get_nonempty_str(v, path, "Path", &d->path, err) < 0 ||
      get_bool(v, path, "ReadOnly", &d->read_only, err) < 0 || get_nonempty_str(v, path, "Format", &d->format, err) < 0)
    return -1;
  if (type && strcmp(type, "VirtualDisk") != 0) {
    cleanup_free char *p = hcs_xasprintf("%s.Type", path);
    return bad(err, p, "\"VirtualDisk\"", json_member(v, "Type"));
  }
  if (d->path == NULL) {
    cleanup_free char *p = hcs_xasprintf("%s.Path", path);
    return bad(err, p, "a disk image path", NULL);
  }
  if (check_file(d->path, path, "Path", err) < 0) return -1;
  /* The format is never guessed from the content: a raw disk the guest
   * wrote a qcow2 header into would open its backing file on the host. */
  if (d->format == NULL) {
    size_t n = strlen(d->path);
    d->format = hcs_xstrdup(n > 6 && strcmp(d->path + n - 6, ".qcow2") == 0 ? "qcow2" : "raw");
  }
  if (strcmp(d->format, "raw") && strcmp(d->format, "qcow2")) {
    cleanup_free char *p = hcs_xasprintf("%s.Format", path);
    return bad(err, p, "\"raw\" or \"qcow2\"", json_member(v, "Format"));
  }
  return 0;
}

int hcs_vm_share_parse(json_t *v, const char *path, hcs_vm_share_t *s, hcs_error_t *err) {
  static const char *const keys[] = {"Name", "AccessName", "Path", "ReadOnly", NULL};
  if (!json_is_object(v)) return bad(err, path, "object", v);
  if (check_keys(v, path, keys, err) < 0) return -1;
  if (get_nonempty_str(v, path, "Name", &s->name, err) < 0 ||
      get_nonempty_str(v, path, "Path", &s->host_path, err) < 0 ||
      get_bool(v, path, "ReadOnly", &s->read_only, err) < 0)
    return -1;
  if (s->name == NULL || !valid_name(s->name)) {
    cleanup_free char *p = hcs_xasprintf("%s.Name", path);
    return bad(err, p, "a name of 1 to 31 letters, digits, `-` or `_`", json_member(v, "Name"));
  }
  struct stat st;
  cleanup_free char *p = hcs_xasprintf("%s.Path", path);
  if (s->host_path == NULL || s->host_path[0] != '/') return bad(err, p, "an absolute path", json_member(v, "Path"));
  if (stat(s->host_path, &st) < 0 || !S_ISDIR(st.st_mode))
    return hcs_error_make(err, errno ? errno : ENOTDIR, "invalid configuration: `%s`: `%s` is not a directory", p,
                          s->host_path);
  /* QEMU's -fsdev takes comma-separated options: a comma would inject one. */
  if (strchr(s->host_path, ','))
    return hcs_error_make(err, 0, "invalid configuration: `%s`: `%s` contains a comma", p, s->host_path);
  return 0;
}

static bool valid_mac(const char *s) {
  if (strlen(s) != 17) return false;
  for (int i = 0; i < 17; i++)
    if (i % 3 == 2 ? (s[i] != ':' && s[i] != '-') : !isxdigit((unsigned char)s[i])) return false;
  return true;
}

void hcs_vm_config_free(hcs_vm_config_t *c) {
  if (c == NULL) return;
  free(c->owner);
  free(c->kernel);
  free(c->initrd);
  free(c->cmdline);
  for (size_t i = 0; i < c->n_disks; i++)
    hcs_vm_disk_clear(&c->disks[i]);
  free(c->disks);
  for (size_t i = 0; i < c->n_shares; i++)
    hcs_vm_share_clear(&c->shares[i]);
  free(c->shares);
  for (size_t i = 0; i < c->n_nics; i++) {
    free(c->nics[i].name);
    free(c->nics[i].endpoint);
    free(c->nics[i].mac);
    free(c->nics[i].ip_param);
  }
  free(c->nics);
  free(c->com_file);
  free(c->com_socket);
  free(c->restore);
  json_decref(c->pci_slots);
  free(c->cgroup_parent);
  free(c);
}

bool hcs_vm_document(json_t *doc) { return json_is_object(doc) && json_object_get(doc, "VirtualMachine") != NULL; }

static int parse_scsi(hcs_vm_config_t *c, json_t *scsi, hcs_error_t *err) {
  const char *ctl, *lun;
  json_t *v, *a;
  json_object_foreach(scsi, ctl, v) {
    cleanup_free char *p = hcs_xasprintf("VirtualMachine.Devices.Scsi.%s", ctl);
    static const char *const keys[] = {"Attachments", NULL};
    if (!json_is_object(v)) return bad(err, p, "object", v);
    if (check_keys(v, p, keys, err) < 0) return -1;
    json_t *att = json_member(v, "Attachments");
    if (att && !json_is_object(att)) {
      cleanup_free char *pa = hcs_xasprintf("%s.Attachments", p);
      return bad(err, pa, "object", att);
    }
    json_object_foreach(att, lun, a) {
      cleanup_free char *pa = hcs_xasprintf("%s.Attachments.%s", p, lun);
      cleanup_free char *name = hcs_xasprintf("%s-%s", ctl, lun);
      if (!valid_name(name)) return bad(err, pa, "a controller and LUN of letters, digits, `-` or `_`", NULL);
      c->disks = hcs_xrealloc(c->disks, (c->n_disks + 1) * sizeof *c->disks);
      memset(&c->disks[c->n_disks], 0, sizeof *c->disks);
      if (hcs_vm_disk_parse(a, pa, name, &c->disks[c->n_disks++], err) < 0) return -1;
    }
  }
  return 0;
}

static int parse_devices(hcs_vm_config_t *c, json_t *dev, hcs_error_t *err) {
  const char *const path = "VirtualMachine.Devices";
  static const char *const com_keys[] = {"Path", "NamedPipe", NULL};
  json_t *scsi, *nics, *plan9, *com, *v;
  const char *key;
  static const char *const plan9_keys[] = {"Shares", NULL};
  if (get_obj(dev, path, "Scsi", &scsi, err) < 0 || get_obj(dev, path, "NetworkAdapters", &nics, err) < 0 ||
      get_obj_known(dev, path, "Plan9", &plan9, plan9_keys, err) < 0 || get_obj(dev, path, "ComPorts", &com, err) < 0)
    return -1;
  if (scsi && parse_scsi(c, scsi, err) < 0) return -1;
  json_object_foreach(nics, key, v) {
    static const char *const keys[] = {"EndpointId", "MacAddress", NULL};
    cleanup_free char *p = hcs_xasprintf("%s.NetworkAdapters.%s", path, key);
    if (!json_is_object(v)) return bad(err, p, "object", v);
    if (check_keys(v, p, keys, err) < 0) return -1;
    if (!valid_name(key)) return bad(err, p, "an adapter name of letters, digits, `-` or `_`", NULL);
    c->nics = hcs_xrealloc(c->nics, (c->n_nics + 1) * sizeof *c->nics);
    hcs_vm_nic_t *n = &c->nics[c->n_nics++];
    memset(n, 0, sizeof *n);
    n->name = hcs_xstrdup(key);
    if (get_nonempty_str(v, p, "EndpointId", &n->endpoint, err) < 0 ||
        get_nonempty_str(v, p, "MacAddress", &n->mac, err) < 0)
      return -1;
    if (n->endpoint == NULL) {
      cleanup_free char *pe = hcs_xasprintf("%s.EndpointId", p);
      return bad(err, pe, "the id of an hcs endpoint", NULL);
    }
    if (n->mac && !valid_mac(n->mac)) {
      cleanup_free char *pm = hcs_xasprintf("%s.MacAddress", p);
      return bad(err, pm, "a MAC address like 02:00:00:00:00:01", json_member(v, "MacAddress"));
    }
  }
  json_t *shares = plan9 ? json_member(plan9, "Shares") : NULL;
  if (shares && !json_is_array(shares)) return bad(err, "VirtualMachine.Devices.Plan9.Shares", "array", shares);
  size_t i;
  json_array_foreach(shares, i, v) {
    cleanup_free char *p = hcs_xasprintf("%s.Plan9.Shares[%zu]", path, i);
    c->shares = hcs_xrealloc(c->shares, (c->n_shares + 1) * sizeof *c->shares);
    memset(&c->shares[c->n_shares], 0, sizeof *c->shares);
    if (hcs_vm_share_parse(v, p, &c->shares[c->n_shares++], err) < 0) return -1;
  }
  json_object_foreach(com, key, v) {
    cleanup_free char *p = hcs_xasprintf("%s.ComPorts.%s", path, key);
    if (strcmp(key, "0") != 0) return bad(err, p, "port \"0\" (one serial port, the guest's ttyS0)", NULL);
    if (!json_is_object(v)) return bad(err, p, "object", v);
    if (check_keys(v, p, com_keys, err) < 0) return -1;
    if (get_nonempty_str(v, p, "Path", &c->com_file, err) < 0 ||
        get_nonempty_str(v, p, "NamedPipe", &c->com_socket, err) < 0)
      return -1;
    const char *f = c->com_file ? c->com_file : c->com_socket;
    if (f == NULL || (c->com_file && c->com_socket)) return bad(err, p, "one of Path or NamedPipe", NULL);
    if (f[0] != '/' || strchr(f, ','))
      return hcs_error_make(err, 0,
                            "invalid configuration: `%s`: expected an absolute path without a comma, got \"%s\"", p, f);
  }
  return 0;
}

hcs_vm_config_t *hcs_vm_config_parse(json_t *doc, hcs_error_t *err) {
  static const char *const top[] = {"Owner", "SchemaVersion", "VirtualMachine", "Linux", NULL};
  static const char *const vm_keys[] = {"StopOnReset", "Chipset", "ComputeTopology", "Devices", "RestoreState", NULL};
  static const char *const chip_keys[] = {"LinuxKernelDirect", "Uefi", NULL};
  static const char *const lkd_keys[] = {"KernelFilePath", "InitRdPath", "KernelCmdLine", NULL};
  static const char *const topo_keys[] = {"Memory", "Processor", NULL};
  static const char *const mem_keys[] = {"SizeInMB", NULL};
  static const char *const cpu_keys[] = {"Count", "Maximum", "Weight", NULL};
  static const char *const dev_keys[] = {"Scsi", "NetworkAdapters", "Plan9", "ComPorts", NULL};
  static const char *const restore_keys[] = {"SaveStateFilePath", NULL};
  static const char *const linux_keys[] = {"CgroupParent", NULL};
  static const char *const none[] = {NULL};
  if (!json_is_object(doc)) {
    bad(err, "", "an object", doc);
    return NULL;
  }
  hcs_vm_config_t *c = hcs_xcalloc(1, sizeof *c);
  c->memory_mb = 256;
  c->cpus = 1;
  json_t *vm, *chip = NULL, *lkd = NULL, *uefi = NULL, *topo = NULL, *mem = NULL, *cpu = NULL, *dev = NULL,
              *restore = NULL, *lx = NULL, *sv = json_member(doc, "SchemaVersion");
  const char *V = "VirtualMachine";
  if (check_keys(doc, "", top, err) < 0 || get_nonempty_str(doc, "", "Owner", &c->owner, err) < 0) goto fail;
  if (sv && (!json_is_object(sv) || json_integer_value(json_object_get(sv, "Major")) != 2)) {
    bad(err, "SchemaVersion", "{\"Major\": 2, ...}", sv);
    goto fail;
  }
  vm = json_member(doc, V);
  if (!json_is_object(vm)) {
    bad(err, V, "object", vm);
    goto fail;
  }
  if (check_keys(vm, V, vm_keys, err) < 0 || get_bool(vm, V, "StopOnReset", &c->stop_on_reset, err) < 0 ||
      get_obj_known(vm, V, "Chipset", &chip, chip_keys, err) < 0 ||
      get_obj_known(vm, V, "ComputeTopology", &topo, topo_keys, err) < 0 ||
      get_obj_known(vm, V, "Devices", &dev, dev_keys, err) < 0 ||
      get_obj_known(vm, V, "RestoreState", &restore, restore_keys, err) < 0)
    goto fail;
  if (chip && (get_obj_known(chip, "VirtualMachine.Chipset", "LinuxKernelDirect", &lkd, lkd_keys, err) < 0 ||
               get_obj_known(chip, "VirtualMachine.Chipset", "Uefi", &uefi, none, err) < 0))
    goto fail;
  if (topo && (get_obj_known(topo, "VirtualMachine.ComputeTopology", "Memory", &mem, mem_keys, err) < 0 ||
               get_obj_known(topo, "VirtualMachine.ComputeTopology", "Processor", &cpu, cpu_keys, err) < 0))
    goto fail;
  if (mem && get_int(mem, "VirtualMachine.ComputeTopology.Memory", "SizeInMB", 16, 1 << 20, &c->memory_mb, err) < 0)
    goto fail;
  if (cpu && (get_int(cpu, "VirtualMachine.ComputeTopology.Processor", "Count", 1, 255, &c->cpus, err) < 0 ||
              get_int(cpu, "VirtualMachine.ComputeTopology.Processor", "Maximum", 1, 10000, &c->cpu_max, err) < 0 ||
              get_int(cpu, "VirtualMachine.ComputeTopology.Processor", "Weight", 1, 10000, &c->cpu_weight, err) < 0))
    goto fail;
  if (lkd && uefi) {
    hcs_error_make(
        err, 0, "invalid configuration: `VirtualMachine.Chipset`: expected one of LinuxKernelDirect or Uefi, got both");
    goto fail;
  }
  if (lkd == NULL && uefi == NULL) {
    bad(err, "VirtualMachine.Chipset.LinuxKernelDirect", "a kernel to boot (or Chipset.Uefi)", NULL);
    goto fail;
  }
  c->uefi = uefi != NULL;
  if (lkd) {
    const char *lkdp = "VirtualMachine.Chipset.LinuxKernelDirect";
    if (get_nonempty_str(lkd, lkdp, "KernelFilePath", &c->kernel, err) < 0 ||
        get_nonempty_str(lkd, lkdp, "InitRdPath", &c->initrd, err) < 0 ||
        get_nonempty_str(lkd, lkdp, "KernelCmdLine", &c->cmdline, err) < 0)
      goto fail;
    if (c->kernel == NULL) {
      bad(err, "VirtualMachine.Chipset.LinuxKernelDirect.KernelFilePath", "the path of a kernel image", NULL);
      goto fail;
    }
    if (check_file(c->kernel, lkdp, "KernelFilePath", err) < 0 ||
        (c->initrd && check_file(c->initrd, lkdp, "InitRdPath", err) < 0))
      goto fail;
  }
  if (dev && parse_devices(c, dev, err) < 0) goto fail;
  if (c->uefi && c->n_disks == 0) {
    bad(err, "VirtualMachine.Devices.Scsi", "a disk to boot from with Chipset.Uefi", NULL);
    goto fail;
  }
  /* The firmware is checked here, not by QEMU: a missing one would fail
   * the create with QEMU's words about a pflash drive. */
  for (int i = 0; c->uefi && i < 2; i++) {
    cleanup_free char *fw = hcs_vm_ovmf_path(i ? "OVMF_VARS.fd" : "OVMF_CODE.fd");
    struct stat st;
    int bad_fw = stat(fw, &st) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
    if (bad_fw) {
      hcs_error_make(err, bad_fw,
                     "invalid configuration: `VirtualMachine.Chipset.Uefi`: the UEFI firmware `%s` is not installed "
                     "(Debian's ovmf package)",
                     fw);
      goto fail;
    }
  }
  if (restore) {
    if (get_nonempty_str(restore, "VirtualMachine.RestoreState", "SaveStateFilePath", &c->restore, err) < 0) goto fail;
    if (c->restore == NULL) {
      bad(err, "VirtualMachine.RestoreState.SaveStateFilePath", "the path of a saved state", NULL);
      goto fail;
    }
    if (check_file(c->restore, "VirtualMachine.RestoreState", "SaveStateFilePath", err) < 0) goto fail;
  }
  if (get_obj_known(doc, "", "Linux", &lx, linux_keys, err) < 0) goto fail;
  if (lx && get_nonempty_str(lx, "Linux", "CgroupParent", &c->cgroup_parent, err) < 0) goto fail;
  if (c->cgroup_parent && (c->cgroup_parent[0] == '/' || strstr(c->cgroup_parent, ".."))) {
    bad(err, "Linux.CgroupParent", "a relative cgroup path without `..`", json_member(lx, "CgroupParent"));
    goto fail;
  }
  c->cgroup_parent_default = c->cgroup_parent == NULL;
  if (c->cgroup_parent == NULL) c->cgroup_parent = hcs_xstrdup("hcs");
  return c;
fail:
  hcs_vm_config_free(c);
  return NULL;
}
