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

const ENUMS: Partial<Record<DesktopField, readonly string[]>> = {
  desktop_type: ['DEDICATED', 'SHARED', 'POOLED'],
  login_status: ['UNREGISTER', 'REGISTERED', 'CONNECTED', 'DISCONNECTED'],
  user_group: ['sudo', 'default', 'administrators', 'users'],
  internet_mode: ['NAT', 'EIP', 'BOTH'],
  attach_state: ['ATTACHED', 'UNATTACH', 'DEATTACHED', 'ATTACHING', 'DEATTACHING', 'ATTACHFAIL', 'DEATTACHFAIL', 'WAITING', 'ATTACH_FAIL_CAN_ATTACH_AGAIN', 'DEATTACH_FAIL_CAN_DEATTACH_AGAIN'],
};
const BOOLEANS: ReadonlySet<string> = new Set(['in_maintenance_mode', 'is_support_internet', 'is_attaching_eip', 'is_freeze']);
const STRING_LISTS: ReadonlySet<string> = new Set(['ip_addresses', 'user_list', 'user_group_list', 'internet_mode_list']);
const OBJECT_LISTS: ReadonlySet<string> = new Set(['security_groups', 'attach_user_infos', 'data_volumes', 'tags']);
const OBJECTS: ReadonlySet<string> = new Set(['addresses', 'metadata', 'flavor', 'root_volume', 'product', 'hour_package_info']);
/** Set through the machine itself, not as attributes. */
const NOT_ATTRIBUTES: ReadonlySet<string> = new Set(['desktop_id', 'status']);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Problems with desktop attributes, as `field: message`. */
export function desktopAttributeProblems(attrs: Record<string, unknown>): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  const known = new Set<string>(DESKTOP_DETAIL_FIELDS);
  for (const [k, v] of Object.entries(attrs)) {
    const bad = (message: string) => out.push({ field: k, message });
    if (!known.has(k)) { bad('is not a DesktopDetailInfo field'); continue; }
    if (NOT_ATTRIBUTES.has(k)) { bad(`is set through the desktop itself (its ${k === 'status' ? 'status' : 'id'}), not as an attribute`); continue; }
    if (v === null) { if (k !== 'process') bad('must not be null'); continue; }
    const allowed = ENUMS[k as DesktopField];
    if (allowed) { if (typeof v !== 'string' || !allowed.includes(v)) bad(`must be one of ${allowed.join(', ')}`); continue; }
    if (BOOLEANS.has(k)) { if (typeof v !== 'boolean') bad('must be true or false'); continue; }
    if (STRING_LISTS.has(k)) { if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad('must be a list of strings'); continue; }
    if (OBJECT_LISTS.has(k)) { if (!Array.isArray(v) || !v.every(isObj)) bad('must be a list of mappings'); continue; }
    if (OBJECTS.has(k)) { if (!isObj(v)) bad('must be a mapping'); continue; }
    if (k === 'process') { if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100) bad('must be an integer from 0 to 100, or null'); continue; }
    if (typeof v !== 'string') bad('must be a string');
  }
  return out;
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
