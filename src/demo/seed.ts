/**
 * The embedded demo: on a fresh `npm start` with no configuration, Porthole seeds a demo domain,
 * project and user and registers the built-in demo desktop (src/demo/desktop.ts) as one ECS server,
 * one physical server and one Workspace desktop. The credentials are generated once and kept in
 * `{data_dir}/demo.json` (mode 0600) so restarts keep them; the file is also how scripts find them.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { restrictFiles } from '../private-files.js';
import { deriveDomainId, deriveProjectId, deriveResourceId, deriveUserId, type FleetSpec } from '../domain/fleet.js';

export interface DemoFacts {
  domain: string;
  project_id: string;
  project_name: string;
  user: string;
  password: string;
  vnc_password: string;
  cloudserver_id: string;
  physicalserver_id: string;
  desktop_id: string;
  public_url: string;
  ak?: string;
  sk?: string;
}

const DOMAIN = 'porthole-demo';
const PROJECT = 'demo';

/** Reads demo.json if present (keeping its password), else makes new facts. */
export function loadOrCreateDemoFacts(dataDir: string, publicUrl: string): DemoFacts {
  const file = path.join(dataDir, 'demo.json');
  let previous: Partial<DemoFacts> = {};
  if (existsSync(file)) {
    try { previous = JSON.parse(readFileSync(file, 'utf8')) as Partial<DemoFacts>; } catch { previous = {}; }
  }
  const projectId = deriveProjectId(DOMAIN, PROJECT);
  return {
    domain: DOMAIN,
    project_id: projectId,
    project_name: PROJECT,
    user: 'demo',
    password: typeof previous.password === 'string' && previous.password.length >= 12 ? previous.password : randomBytes(12).toString('base64url'),
    vnc_password: typeof previous.vnc_password === 'string' && previous.vnc_password.length === 8 ? previous.vnc_password : randomBytes(6).toString('base64url'),
    cloudserver_id: deriveResourceId(projectId, 'cloudserver', 'demo-ecs'),
    physicalserver_id: deriveResourceId(projectId, 'physicalserver', 'demo-bms'),
    desktop_id: deriveResourceId(projectId, 'desktop', 'demo-desktop'),
    public_url: publicUrl,
    ...(previous.ak ? { ak: previous.ak } : {}),
    ...(previous.sk ? { sk: previous.sk } : {}),
  };
}

export function writeDemoFacts(dataDir: string, facts: DemoFacts): void {
  const file = path.join(dataDir, 'demo.json');
  writeFileSync(file, JSON.stringify(facts, null, 2) + '\n', { mode: 0o600 });
  restrictFiles(file);
}

/**
 * The demo as a fleet, pointing every machine at the demo desktop on `vncPort`. The desktop is
 * assigned to the demo user by its IAM id (`userId`: the stored user's, else the id the fleet derives),
 * in the Linux administrators' group — the demo desktop says it runs Linux.
 */
export function demoFleet(facts: DemoFacts, vncHost: string, vncPort: number, userId: string = deriveUserId(DOMAIN, facts.user)): FleetSpec {
  const console = { host: vncHost, port: vncPort, security: 'vncauth' as const, password: facts.vnc_password, zone: 'demo' };
  const created = '2026-01-01T00:00:00.000Z';
  return {
    domains: [{
      id: deriveDomainId(DOMAIN),
      name: DOMAIN,
      users: [{ name: facts.user, password: facts.password, domainAdmin: true, roles: { [PROJECT]: 'admin' } }],
      projects: [{
        id: facts.project_id,
        name: PROJECT,
        resources: [
          { id: facts.cloudserver_id, kind: 'cloudserver', name: 'demo-ecs', status: 'ACTIVE', attributes: { flavor: 's6.small.1' }, console },
          { id: facts.physicalserver_id, kind: 'physicalserver', name: 'demo-bms', status: 'ACTIVE', attributes: {}, console },
          {
            id: facts.desktop_id, kind: 'desktop', name: 'demo-desktop', status: 'ACTIVE', console,
            attributes: {
              computer_name: 'demo-desktop', os_host_name: 'demo-desktop', desktop_type: 'DEDICATED', created,
              ip_addresses: ['192.168.0.10'], ipv4: '192.168.0.10',
              addresses: { 'demo-net': [{ addr: '192.168.0.10', version: '4', 'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:10', 'OS-EXT-IPS:type': 'fixed' }] },
              user_list: [facts.user], user_name: facts.user, user_group: 'sudo',
              attach_user_infos: [{ user_id: userId, user_name: facts.user, user_group: 'sudo', type: 'USER' }],
              metadata: { image_name: 'Porthole demo', os_type: 'Linux', os_bit: '64', desktop_os_version: 'Porthole demo 1.0' },
              flavor: { id: 'workspace.x86.general.xlarge2', links: [] },
              task_status: '', in_maintenance_mode: false, login_status: 'REGISTERED',
              security_groups: [{ id: 'b6c8c4b8-0000-4000-a000-000000000001', name: 'default' }],
              root_volume: { type: 'SSD', size: 80, device: '/dev/vda', id: 'b6c8c4b8-0000-4000-a000-000000000002', display_name: 'root' },
              data_volumes: [],
              availability_zone: 'demo-az1', site_type: 'CENTER', site_name: 'demo', product_id: 'workspace.x86.general.xlarge2',
              product: { product_id: 'workspace.x86.general.xlarge2', flavor_id: 'workspace.x86.general.xlarge2', type: 'BASE', cpu: '2', memory: '4096', descriptions: 'Demo desktop', charge_mode: '1', architecture: 'x86', is_gpu: false },
              os_version: 'Porthole demo 1.0', ou_name: '', sid: '', order_id: '', tags: [{ key: 'env', value: 'demo' }],
              is_support_internet: false, internet_mode: 'NAT', internet_mode_list: ['NAT'], is_attaching_eip: false, attach_state: 'ATTACHED',
              enterprise_project_id: '0', subnet_id: 'b6c8c4b8-0000-4000-a000-000000000003', bill_resource_id: '', process: null, root_resource_id: '',
              is_freeze: false,
            },
          },
        ],
      }],
    }],
  };
}
