/**
 * Workspace desktops as Porthole stores them: the DesktopDetailInfo fields (reference E.5, GO SDK
 * `model_desktop_detail_info.go`) kept as attributes, validated by type and documented enum so what
 * `GET /v2/{project_id}/desktops/{id}` returns always parses in the SDKs. `desktop_id` and `status`
 * are not attributes (the machine's id and status are), and `login_status` is computed live
 * (domain/liveness.ts); a stored one is only the fallback before the first probe.
 */

/** Every DesktopDetailInfo field (reference E.5); only these leave the gateway. */
export const DESKTOP_DETAIL_FIELDS = [
  'desktop_id', 'computer_name', 'os_host_name', 'addresses', 'ip_addresses', 'ipv4', 'ipv6', 'user_list', 'user_group_list',
  'desktop_type', 'metadata', 'flavor', 'status', 'task_status', 'in_maintenance_mode', 'created', 'security_groups', 'login_status',
  'user_name', 'attach_user_infos', 'product_id', 'share_resource_sku', 'root_volume', 'data_volumes', 'user_group', 'availability_zone',
  'site_type', 'site_name', 'product', 'ou_name', 'os_version', 'sid', 'order_id', 'tags', 'is_support_internet', 'internet_mode',
  'internet_mode_list', 'is_attaching_eip', 'attach_state', 'enterprise_project_id', 'subnet_id', 'bill_resource_id', 'process',
  'root_resource_id', 'hour_package_info', 'is_freeze',
] as const;

export type DesktopField = (typeof DESKTOP_DETAIL_FIELDS)[number];

/**
 * The documented type of every field, nested ones included (reference E.5; seed 003 tables 4-12),
 * so that no answer breaks a typed client's model (Go `*int32`, `map[string]string`, …).
 */
type FieldType =
  | 'string' | 'bool' | 'int32' | 'time'
  | { enum: readonly string[] }
  | { list: FieldType }
  | { map: FieldType; keys?: Record<string, FieldType> }
  | { struct: string; fields: Record<string, FieldType>; required?: readonly string[] }
  | { percent: true }; // process: an integer 0-100, or null

const USER_GROUPS = ['sudo', 'default', 'administrators', 'users'] as const;
/** Seed 003, task_status (plus `updating`, reference E.5); '' = no task in progress. */
const TASK_STATUSES = [
  '', 'scheduling', 'block_device_mapping', 'networking', 'spawning', 'rebooting', 'reboot_pending', 'reboot_started', 'rebooting_hard',
  'reboot_pending_hard', 'reboot_started_hard', 'rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning', 'migrating', 'resize_prep',
  'resize_migrating', 'resize_migrated', 'resize_finish', 'resize_reverting', 'powering-off', 'powering-on', 'deleting', 'deleteFailed', 'updating',
] as const;
const VOLUME: FieldType = {
  struct: 'VolumeDetail', required: ['type', 'size'],
  fields: {
    type: 'string', size: 'int32', kms_id: 'string', iops: 'int32', throughput: 'int32', device: 'string', id: 'string', volume_id: 'string',
    bill_resource_id: 'string', desktop_pool_disk_id: 'string', create_time: 'time', display_name: 'string', resource_spec_code: 'string',
  },
};

export const DESKTOP_FIELD_TYPES: Record<DesktopField, FieldType> = {
  desktop_id: 'string', computer_name: 'string', os_host_name: 'string',
  addresses: {
    map: {
      list: {
        struct: 'AddressInfo',
        fields: { addr: 'string', version: { enum: ['4', '6'] }, 'OS-EXT-IPS-MAC:mac_addr': 'string', 'OS-EXT-IPS:type': { enum: ['fixed', 'floating'] } },
      },
    },
  },
  ip_addresses: { list: 'string' }, ipv4: 'string', ipv6: 'string', user_list: { list: 'string' }, user_group_list: { list: 'string' },
  desktop_type: { enum: ['DEDICATED', 'SHARED', 'POOLED'] },
  metadata: { map: 'string', keys: { os_bit: { enum: ['32', '64'] }, os_type: { enum: ['Linux', 'Windows', 'Others'] }, charging_mode: { enum: ['0', '1'] } } },
  flavor: { struct: 'FlavorInfo', fields: { id: 'string', links: { list: { struct: 'FlavorLinkInfo', fields: { rel: 'string', hrel: 'string' } } } } },
  status: { enum: ['ACTIVE', 'SHUTOFF', 'ERROR', 'HIBERNATED'] },
  task_status: { enum: TASK_STATUSES }, in_maintenance_mode: 'bool', created: 'time',
  security_groups: { list: { struct: 'SecurityGroupInfo', fields: { id: 'string', name: 'string' } } },
  login_status: { enum: ['UNREGISTER', 'REGISTERED', 'CONNECTED', 'DISCONNECTED'] },
  user_name: 'string',
  attach_user_infos: {
    list: {
      struct: 'AttachInstancesUserInfo', required: ['user_name', 'user_group'],
      fields: { user_id: 'string', user_name: 'string', domain: 'string', user_group: { enum: USER_GROUPS }, type: { enum: ['USER', 'GROUP'] } },
    },
  },
  product_id: 'string', share_resource_sku: 'string', root_volume: VOLUME, data_volumes: { list: VOLUME },
  user_group: { enum: USER_GROUPS }, availability_zone: 'string', site_type: 'string', site_name: 'string',
  product: {
    struct: 'ProductInfo',
    fields: {
      product_id: 'string', flavor_id: 'string', type: 'string', cpu: 'string', memory: 'string', descriptions: 'string', charge_mode: 'string',
      architecture: 'string', is_gpu: 'bool', package_type: 'string', system_disk_type: 'string', system_disk_size: 'string', contain_data_disk: 'bool',
      resource_type: 'string', cloud_service_type: 'string', volume_product_type: 'string', status: 'string',
    },
  },
  ou_name: 'string', os_version: 'string', sid: 'string', order_id: 'string',
  tags: { list: { struct: 'Tag', required: ['key'], fields: { key: 'string', value: 'string' } } },
  is_support_internet: 'bool', internet_mode: { enum: ['NAT', 'EIP', 'BOTH'] }, internet_mode_list: { list: 'string' }, is_attaching_eip: 'bool',
  attach_state: {
    enum: ['ATTACHED', 'UNATTACH', 'DEATTACHED', 'ATTACHING', 'DEATTACHING', 'ATTACHFAIL', 'DEATTACHFAIL', 'WAITING', 'ATTACH_FAIL_CAN_ATTACH_AGAIN', 'DEATTACH_FAIL_CAN_DEATTACH_AGAIN'],
  },
  enterprise_project_id: 'string', subnet_id: 'string', bill_resource_id: 'string', process: { percent: true }, root_resource_id: 'string',
  hour_package_info: {
    struct: 'HourPackageInfo',
    fields: {
      root_order_id: 'string', package_resource_id: 'string', package_instance_id: 'string', package_spec_code: 'string',
      combined_product_type_code: 'string', use_up_policy: 'string', package_duration: 'int32', use_duration: 'int32',
    },
  },
  is_freeze: 'bool',
};

/** Set through the machine itself, not as attributes. */
const NOT_ATTRIBUTES: ReadonlySet<string> = new Set(['desktop_id', 'status']);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 3339 date-time (`2026-01-01T00:00:00Z`, fraction and offset optional), and a real date. */
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?$/;
function isTime(v: string): boolean {
  const m = TIME_RE.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

export interface AttributeProblem {
  /** Where, dotted (`root_volume.size`, `addresses.net.0.version`). */
  field: string;
  /** The same as path segments (fleet files find the line with it). */
  path: (string | number)[];
  message: string;
}

/** Problems of `v` against `type`, appended to `out`. */
function checkValue(v: unknown, type: FieldType, path: (string | number)[], out: AttributeProblem[]): void {
  const bad = (message: string) => out.push({ field: path.join('.'), path, message });
  if (type === 'string') { if (typeof v !== 'string') bad('must be a string'); return; }
  if (type === 'bool') { if (typeof v !== 'boolean') bad('must be true or false'); return; }
  if (type === 'int32') { if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) bad('must be an integer'); return; }
  if (type === 'time') { if (typeof v !== 'string' || !isTime(v)) bad('must be a date and time such as 2026-01-01T00:00:00Z'); return; }
  if ('enum' in type) {
    if (typeof v !== 'string' || !type.enum.includes(v)) bad(`must be one of ${type.enum.map((x) => (x === '' ? '"" (none)' : x)).join(', ')}`);
    return;
  }
  if ('percent' in type) { if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100)) bad('must be an integer from 0 to 100, or null'); return; }
  if ('list' in type) {
    if (!Array.isArray(v)) { bad('must be a list'); return; }
    v.forEach((x, i) => checkValue(x, type.list, [...path, i], out));
    return;
  }
  if ('map' in type) {
    if (!isObj(v)) { bad('must be a mapping'); return; }
    for (const [k, x] of Object.entries(v)) checkValue(x, type.keys?.[k] ?? type.map, [...path, k], out);
    return;
  }
  if (!isObj(v)) { bad(`must be a mapping (${type.struct})`); return; }
  for (const r of type.required ?? []) if (v[r] === undefined || v[r] === null) out.push({ field: [...path, r].join('.'), path: [...path, r], message: `is required in ${type.struct}` });
  for (const [k, x] of Object.entries(v)) {
    const t = type.fields[k];
    if (t === undefined) { out.push({ field: [...path, k].join('.'), path: [...path, k], message: `is not a ${type.struct} field` }); continue; }
    if (x === null && !(type.required ?? []).includes(k)) continue; // an optional field may be null
    checkValue(x, t, [...path, k], out);
  }
}

/** The user groups of an OS (seed 003 user_group: sudo/default on Linux, administrators/users on Windows). */
export function userGroupsFor(osType: unknown): readonly string[] {
  if (osType === 'Linux') return ['sudo', 'default'];
  if (osType === 'Windows') return ['administrators', 'users'];
  return USER_GROUPS;
}

/** The group a user assigned without one gets: the OS's standard users' group. */
export function defaultUserGroup(osType: unknown): string {
  return osType === 'Linux' ? 'default' : 'users';
}

/** Problems with desktop attributes: each field against its documented type, enum and nested fields. */
export function desktopAttributeProblems(attrs: Record<string, unknown>): AttributeProblem[] {
  const out: AttributeProblem[] = [];
  const types = DESKTOP_FIELD_TYPES as Record<string, FieldType>;
  for (const [k, v] of Object.entries(attrs)) {
    const bad = (message: string) => out.push({ field: k, path: [k], message });
    const type = types[k];
    if (type === undefined) { bad('is not a DesktopDetailInfo field'); continue; }
    if (NOT_ATTRIBUTES.has(k)) { bad(`is set through the desktop itself (its ${k === 'status' ? 'status' : 'id'}), not as an attribute`); continue; }
    if (v === null) { if (k !== 'process') bad('must not be null'); continue; }
    checkValue(v, type, [k], out);
  }
  // The user group belongs to the desktop's OS.
  const osType = isObj(attrs.metadata) ? attrs.metadata.os_type : undefined;
  const groups = userGroupsFor(osType);
  if (typeof attrs.user_group === 'string' && !groups.includes(attrs.user_group)) {
    out.push({ field: 'user_group', path: ['user_group'], message: `must be ${groups.join(' or ')} on a ${String(osType)} desktop` });
  }
  if (Array.isArray(attrs.attach_user_infos)) {
    attrs.attach_user_infos.forEach((x, i) => {
      if (isObj(x) && typeof x.user_group === 'string' && USER_GROUPS.includes(x.user_group as never) && !groups.includes(x.user_group)) {
        out.push({ field: `attach_user_infos.${i}.user_group`, path: ['attach_user_infos', i, 'user_group'], message: `must be ${groups.join(' or ')} on a ${String(osType)} desktop` });
      }
    });
  }
  return out;
}

/** The empty value of a field that is not set: [] for a list, {} for a map, null otherwise (reference E.5: every field is optional). */
export function unsetValue(field: DesktopField): unknown {
  const t = DESKTOP_FIELD_TYPES[field];
  if (typeof t === 'object' && 'list' in t) return [];
  if (typeof t === 'object' && 'map' in t) return {};
  return null;
}

/** JSON Schema of a field type (for the OpenAPI document); `nullable`: also null (an unset field as served). */
function schemaOf(type: FieldType, nullable: boolean): Record<string, unknown> {
  const orNull = (x: Record<string, unknown>): Record<string, unknown> => (nullable ? { anyOf: [x, { type: 'null' }] } : x);
  if (type === 'string') return orNull({ type: 'string' });
  if (type === 'bool') return orNull({ type: 'boolean' });
  if (type === 'int32') return orNull({ type: 'integer', format: 'int32' });
  if (type === 'time') return orNull({ type: 'string', format: 'date-time' });
  if ('enum' in type) return orNull({ type: 'string', enum: [...type.enum] });
  if ('percent' in type) return { anyOf: [{ type: 'integer', minimum: 0, maximum: 100 }, { type: 'null' }] };
  if ('list' in type) return { type: 'array', items: schemaOf(type.list, false) };
  if ('map' in type) {
    return { type: 'object', additionalProperties: schemaOf(type.map, false), ...(type.keys ? { properties: Object.fromEntries(Object.entries(type.keys).map(([k, t]) => [k, schemaOf(t, false)])) } : {}) };
  }
  return orNull({
    type: 'object', title: type.struct, additionalProperties: false, ...(type.required ? { required: [...type.required] } : {}),
    properties: Object.fromEntries(Object.entries(type.fields).map(([k, t]) => [k, schemaOf(t, !(type.required ?? []).includes(k))])),
  });
}

/** DesktopDetailInfo as served: every field present, unset ones [] / {} / null. */
export function desktopDetailSchema(): Record<string, unknown> {
  return {
    type: 'object', required: [...DESKTOP_DETAIL_FIELDS], additionalProperties: false,
    properties: Object.fromEntries(DESKTOP_DETAIL_FIELDS.map((f) => [f, schemaOf(DESKTOP_FIELD_TYPES[f], !['desktop_id', 'computer_name', 'status', 'created', 'login_status'].includes(f))])),
  };
}

/** Workspace's desktop `status` (ACTIVE, SHUTOFF, ERROR, HIBERNATED) for a machine's status. */
export function workspaceStatusOf(status: string): string {
  switch (status) {
    case 'ACTIVE': case 'RUNNING': return 'ACTIVE';
    case 'SHUTOFF': case 'STOPPED': case 'SHUTDOWN': return 'SHUTOFF';
    case 'HIBERNATED': case 'SUSPENDED': return 'HIBERNATED';
    default: return 'ERROR';
  }
}

/**
 * Assigns the desktop to `user` (an IAM user of the project's domain): `user_list`, `user_name`,
 * `user_group` and `attach_user_infos` (type USER), as Workspace reports an assigned desktop.
 */
export function assignDesktopUser(attrs: Record<string, unknown>, user: { id: string; name: string }, group: string): Record<string, unknown> {
  const out = { ...attrs };
  const list = Array.isArray(out.user_list) ? (out.user_list as unknown[]).filter((x): x is string => typeof x === 'string' && x !== user.name) : [];
  out.user_list = [...list, user.name];
  const infos = Array.isArray(out.attach_user_infos) ? (out.attach_user_infos as unknown[]).filter((x) => isObj(x) && x.user_name !== user.name) : [];
  out.attach_user_infos = [...infos, { user_id: user.id, user_name: user.name, user_group: group, type: 'USER' }];
  out.user_name ??= user.name;
  out.user_group ??= group;
  return out;
}

/** Removes `userName` from the desktop's assignment; the desktop's `user_name` moves to the next user, if any. */
export function unassignDesktopUser(attrs: Record<string, unknown>, userName: string): { attributes: Record<string, unknown>; found: boolean } {
  const out = { ...attrs };
  const list = Array.isArray(out.user_list) ? (out.user_list as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  const infos = Array.isArray(out.attach_user_infos) ? (out.attach_user_infos as unknown[]).filter(isObj) : [];
  const found = list.includes(userName) || infos.some((x) => x.user_name === userName) || out.user_name === userName;
  out.user_list = list.filter((x) => x !== userName);
  out.attach_user_infos = infos.filter((x) => x.user_name !== userName);
  if (out.user_name === userName) {
    const next = (out.user_list as string[])[0];
    if (next === undefined) { delete out.user_name; delete out.user_group; } else out.user_name = next;
  }
  return { attributes: out, found };
}
