/**
 * Remote assistance on the console page (domain/assistance.ts is the server side).
 *
 * The page makes its own key (32 random bytes), offers it once as the WebSocket subprotocol
 * `porthole-page.<key>` when it connects (the gateway binds it to the new session; see
 * domain/assist-page-key.ts) and afterwards sends it as `X-Porthole-Page-Key` to
 * `/assist/v1/page` — never the spent console token. The gateway answers with the page's role:
 *
 * - `user` (the desktop's assigned user): a banner asks to accept or decline a request (nothing is
 *   shared before; on a desktop several users share, nothing until every one of them accepted: a user
 *   who did sees whom it still waits for, and can still decline); once accepted, the list of helpers watching (name, since when, mode) with
 *   Give control / Take back control / Remove per helper, and End assistance.
 * - `helper`: whether the desktop user gave this helper control; the page switches noVNC's (cosmetic)
 *   view-only and its badge accordingly. The gateway enforces the mode on the wire either way.
 * - `none`: nothing to show; polling stops.
 *
 * The panel is built with DOM calls and filled with `textContent` only (names come from helpers);
 * its styles are in assist.css, loaded through console.css (CSP: no inline script or style).
 * Tests observe `body[data-assist]` (none | request | waiting | active | helper) and the elements' ids.
 */
import { PAGE_KEY_HEADER } from '../../domain/assist-page-key.js';

/** A fresh page key: 32 random bytes, base64url (43 characters). getRandomValues works on http: pages too. */
export function newPageKey(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

interface HelperView { id: string; name: string; since: string; control: boolean }
type PageState =
  | { role: 'user'; poll_ms: number; assistance: null | {
    status: string; initiator_type: string; requested_by: string | null; consented: boolean; waiting_for: string[]; helpers: HelperView[];
  } }
  | { role: 'helper'; poll_ms: number | null; status: string; helper: { control: boolean } }
  | { role: 'none'; poll_ms: null };

export interface AssistHooks {
  /** A helper page was given (true) or refused (false) control. */
  setControl(on: boolean): void;
}

const STATE_URL = '/assist/v1/page';
const ACTION_URL = '/assist/v1/page/actions';
/** After a failed poll (network, 5xx), wait this long; give up after MAX_FAILURES in a row. */
const RETRY_MS = 3000;
const MAX_FAILURES = 5;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { id?: string; className?: string; text?: string } = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.id) e.id = props.id;
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  return e;
}

function timeOf(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class AssistPanel {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private failures = 0;
  private lastHelpers = '';
  private control: boolean | null = null;
  private readonly root = el('section', { id: 'assist', className: 'assist' });
  private readonly text = el('p', { id: 'assist-text', className: 'assist-text' });
  private readonly accept = el('button', { id: 'assist-accept', className: 'primary', text: 'Accept' });
  private readonly decline = el('button', { id: 'assist-decline', text: 'Decline' });
  private readonly end = el('button', { id: 'assist-end', text: 'End assistance' });
  private readonly list = el('ul', { id: 'assist-helpers', className: 'assist-helpers' });
  private readonly error = el('p', { id: 'assist-error', className: 'assist-error' });

  constructor(private readonly pageKey: string, private readonly hooks: AssistHooks) {
    this.root.hidden = true;
    this.root.setAttribute('role', 'region');
    this.root.setAttribute('aria-label', 'Remote assistance');
    this.root.setAttribute('aria-live', 'polite');
    this.accept.type = this.decline.type = this.end.type = 'button';
    const actions = el('div', { className: 'assist-actions' });
    actions.append(this.accept, this.decline, this.end);
    this.root.append(this.text, actions, this.list, this.error);
    this.accept.addEventListener('click', () => void this.act('accept'));
    this.decline.addEventListener('click', () => void this.act('decline'));
    this.end.addEventListener('click', () => void this.act('close'));
    this.list.addEventListener('click', (ev) => {
      const button = (ev.target as Element).closest('button');
      const id = button?.closest('li')?.dataset.helperId;
      const action = button?.dataset.action;
      if (id && action) void this.act(action, id);
    });
    document.body.dataset.assist = 'none';
    const bar = document.querySelector('header.bar');
    if (bar) bar.after(this.root);
    else document.body.prepend(this.root);
  }

  start(): void {
    if (this.stopped) return;
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (document.body.dataset.assist !== 'helper') this.hide();
  }

  private hide(): void {
    this.root.hidden = true;
    document.body.dataset.assist = 'none';
  }

  private schedule(ms: number | null): void {
    clearTimeout(this.timer);
    if (this.stopped || ms === null) return;
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  private async request(url: string, body?: object): Promise<Response> {
    return fetch(url, {
      method: body ? 'POST' : 'GET',
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { Accept: 'application/json', [PAGE_KEY_HEADER]: this.pageKey, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    let res: Response;
    try {
      res = await this.request(STATE_URL);
    } catch {
      return this.failed();
    }
    if (res.status === 401 || res.status === 404 || res.status === 410) {
      this.stopped = true; // not a desktop console, or the session is over
      if (document.body.dataset.assist !== 'helper') this.hide();
      return;
    }
    if (!res.ok) return this.failed();
    this.failures = 0;
    const state = (await res.json()) as PageState;
    this.render(state);
    this.schedule(state.poll_ms);
  }

  private failed(): void {
    if (++this.failures >= MAX_FAILURES) this.stopped = true;
    this.schedule(RETRY_MS);
  }

  private async act(action: string, helperId?: string): Promise<void> {
    this.error.textContent = '';
    for (const b of this.root.querySelectorAll('button')) b.disabled = true;
    try {
      const res = await this.request(ACTION_URL, { action, ...(helperId ? { helper_id: helperId } : {}) });
      const body = (await res.json().catch(() => null)) as (PageState & { error_msg?: string }) | null;
      if (!res.ok || body === null) {
        this.error.textContent = body?.error_msg ?? 'The gateway could not do that. Try again.';
      } else {
        this.render(body);
      }
    } catch {
      this.error.textContent = 'The gateway could not be reached. Try again.';
    } finally {
      for (const b of this.root.querySelectorAll('button')) b.disabled = false;
    }
  }

  private render(state: PageState): void {
    if (state.role === 'helper') {
      document.body.dataset.assist = 'helper';
      const on = state.helper.control && state.status !== 'CLOSE';
      if (on !== this.control) {
        this.control = on;
        this.hooks.setControl(on);
      }
      return;
    }
    if (state.role !== 'user' || state.assistance === null) return this.hide();
    const a = state.assistance;
    const who = a.requested_by ?? 'An administrator';
    this.root.hidden = false;
    if (a.status === 'WAIT_USER_CONFIRM' && a.consented) {
      // A desktop shared by several users: nothing is shared until every one of them accepts.
      document.body.dataset.assist = 'waiting';
      this.text.textContent = `You accepted remote assistance on this desktop. Nothing is shared until its other users accept too (waiting for ${a.waiting_for.join(', ') || 'them'}).`;
      this.accept.hidden = true;
      this.decline.hidden = false;
      this.end.hidden = true;
      this.list.hidden = true;
      return;
    }
    if (a.status === 'WAIT_USER_CONFIRM') {
      document.body.dataset.assist = 'request';
      const others = a.waiting_for.length > 1 ? ' and every other user of this desktop accept' : ' accept';
      this.text.textContent = a.initiator_type === 'ENDUSER_INITIATE'
        ? `${who}, who also uses this desktop, asks for remote assistance on it. Nothing is shared until you${others}; helpers can only watch until given control.`
        : `${who} asks to assist you on this desktop. Nothing is shared until you${others}; helpers can only watch until you give them control.`;
      this.accept.hidden = this.decline.hidden = false;
      this.end.hidden = true;
      this.list.hidden = true;
      return;
    }
    document.body.dataset.assist = 'active';
    this.accept.hidden = this.decline.hidden = true;
    this.end.hidden = false;
    const n = a.helpers.length;
    this.text.textContent = n === 0
      ? 'Remote assistance is on: waiting for a helper to join.'
      : `Remote assistance is on: ${n} ${n === 1 ? 'helper is' : 'helpers are'} watching your screen.`;
    this.list.hidden = n === 0;
    const key = JSON.stringify(a.helpers);
    if (key === this.lastHelpers) return;
    this.lastHelpers = key;
    this.list.replaceChildren(...a.helpers.map((h) => this.helperRow(h)));
  }

  private helperRow(h: HelperView): HTMLLIElement {
    const li = el('li', { className: 'assist-helper' });
    li.dataset.helperId = h.id;
    li.dataset.control = String(h.control);
    const since = timeOf(h.since);
    li.append(
      el('span', { className: 'assist-name', text: h.name }),
      el('span', { className: 'assist-since', text: since ? `since ${since}` : '' }),
      el('span', { className: 'assist-mode', text: h.control ? 'Has control' : 'View only' }),
    );
    const toggle = el('button', { className: h.control ? 'assist-revoke' : 'assist-grant', text: h.control ? 'Take back control' : 'Give control' });
    toggle.type = 'button';
    toggle.dataset.action = h.control ? 'revoke_control' : 'grant_control';
    const remove = el('button', { className: 'assist-remove', text: 'Remove' });
    remove.type = 'button';
    remove.dataset.action = 'remove_helper';
    li.append(toggle, remove);
    return li;
  }
}
