/**
 * Porthole's console page: noVNC's RFB core plus a status bar, wired to the gateway's own origin.
 *
 * The page opens exactly one WebSocket, to `websockify?token=T` next to itself (see params.ts for why
 * `host`/`port`/`path` are ignored), hands it to noVNC, and tells the user in words why the console
 * ended: the gateway's close reason (src/close-codes.ts), or — when the upgrade was refused before the
 * socket opened — the token's state from `token-state`. Everything the server or the machine says
 * (desktop name, reasons) is rendered with `textContent`, never as HTML (CVE-2017-18635).
 *
 * The page runs under a strict CSP (no inline script or style, no eval); noVNC only sets
 * `element.style` properties, which CSP allows. Tests observe it through `body[data-state]`,
 * `body[data-reason]` and the canvas pixels — there is deliberately no global handle on the RFB object.
 */
import RFB from '@novnc/novnc';
import { reasonForClose, reasonForTokenState, reasonText } from './reasons.js';
import { tokenFromLocation, tokenStateUrl, websocketUrl } from './params.js';
import { AssistPanel, newPageKey } from './assist.js';
import { pageProtocol } from '../../domain/assist-page-key.js';

type PageState = 'connecting' | 'connected' | 'disconnected';

const STATE_TEXT: Record<PageState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Disconnected',
};

/** How long to wait for the WebSocket close event after noVNC reports its own failure. */
const CLOSE_WAIT_MS = 1000;
/** How long the `token-state` lookup may take before the page settles for "could not connect". */
const TOKEN_STATE_TIMEOUT_MS = 5000;
/** Longest machine name shown; ServerInit names can be up to 2^32 bytes in principle. */
const MAX_NAME_LENGTH = 200;
/** Behind the framebuffer; matches `--stage-bg` in console.css. */
const SCREEN_BACKGROUND = '#0d1117';

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`console page is missing #${id}`);
  return found as T;
}

const ui = {
  machine: byId('machine'),
  stateText: byId('state-text'),
  reason: byId('reason'),
  screen: byId('screen'),
  notice: byId('notice'),
  noticeTitle: byId('notice-title'),
  noticeText: byId('notice-text'),
  viewOnlyBadge: byId('view-only-badge'),
  cad: byId<HTMLButtonElement>('btn-cad'),
  scale: byId<HTMLButtonElement>('btn-scale'),
  fullscreen: byId<HTMLButtonElement>('btn-fullscreen'),
};

/** View-only: from the page's URL; a remote-assistance helper's page switches it when given or refused control (assist.ts). */
let viewOnly = document.body.dataset.viewOnly === 'true';
let rfb: RFB | null = null;

/** A remote-assistance helper was given (or refused) control: noVNC's input (cosmetic: the gateway enforces it) and the badge. */
function setControl(on: boolean): void {
  viewOnly = !on;
  if (rfb !== null) rfb.viewOnly = viewOnly;
  ui.viewOnlyBadge.hidden = false;
  ui.viewOnlyBadge.textContent = on ? 'You have control' : 'View only';
  ui.viewOnlyBadge.classList.toggle('control', on);
  ui.cad.disabled = document.body.dataset.state !== 'connected' || viewOnly;
}

function setMachineName(name: string): void {
  const shown = name.replace(/\s+/g, ' ').trim().slice(0, MAX_NAME_LENGTH) || 'Console';
  ui.machine.textContent = shown; // text, never HTML: the name comes from the VNC server
  ui.machine.title = shown;
  document.title = `${shown} · Porthole`;
}

function showState(next: PageState, reasonKey?: string): void {
  if (reasonKey !== undefined) {
    const words = reasonText(reasonKey);
    document.body.dataset.reason = reasonKey;
    ui.reason.textContent = words;
    ui.reason.title = words;
    ui.noticeText.textContent = words;
  }
  document.body.dataset.state = next; // last, so a test that sees the state also sees the reason
  ui.stateText.textContent = STATE_TEXT[next];
  ui.notice.hidden = next !== 'disconnected';
  ui.cad.disabled = next !== 'connected' || viewOnly;
  ui.scale.disabled = next === 'disconnected';
}

async function askTokenState(token: string): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TOKEN_STATE_TIMEOUT_MS);
  try {
    const res = await fetch(tokenStateUrl(token), {
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      signal: abort.signal,
    });
    return res.ok ? reasonForTokenState(await res.json()) : 'connect_failed';
  } catch {
    return 'connect_failed';
  } finally {
    clearTimeout(timer);
  }
}

function connect(token: string): void {
  showState('connecting');
  // One subprotocol: the page's own key for remote assistance (assist.ts), which the gateway echoes
  // (Chromium drops a socket whose server picks a protocol that was not offered, or none of several).
  const pageKey = newPageKey();
  const assist = new AssistPanel(pageKey, { setControl });
  const ws = new WebSocket(websocketUrl(window.location, token), [pageProtocol(pageKey)]);
  let opened = false;
  let closed: { code: number; reason: string } | null = null;
  let rfbEnded = false;
  let clientGaveUp = false;
  let settled = false;
  let waitTimer: ReturnType<typeof setTimeout> | undefined;

  const settle = async (): Promise<void> => {
    if (settled) return;
    settled = true;
    clearTimeout(waitTimer);
    const key = reasonForClose(closed, opened, clientGaveUp) ?? (await askTokenState(token));
    showState('disconnected', key);
  };

  // Registered before noVNC sets `onclose`, so the code and reason are known before its
  // `disconnect` event fires.
  ws.addEventListener('open', () => {
    opened = true;
  });
  ws.addEventListener('close', (ev) => {
    closed = { code: ev.code, reason: ev.reason };
    if (rfbEnded) void settle();
  });

  const client = new RFB(ui.screen, ws, { shared: true });
  rfb = client;
  client.background = SCREEN_BACKGROUND;
  client.scaleViewport = ui.scale.getAttribute('aria-pressed') === 'true';
  client.viewOnly = viewOnly; // cosmetic: the gateway enforces view-only on the wire
  client.showDotCursor = true;

  client.addEventListener('connect', () => {
    showState('connected');
    client.focus({ preventScroll: true });
    assist.start();
  });
  client.addEventListener('desktopname', (ev) => setMachineName(ev.detail.name));
  client.addEventListener('disconnect', () => {
    rfbEnded = true;
    rfb = null;
    assist.stop();
    if (closed !== null) {
      void settle();
    } else {
      // noVNC gave up on its own; give the gateway's close (if any reason is coming) a moment.
      clientGaveUp = true;
      waitTimer = setTimeout(() => void settle(), CLOSE_WAIT_MS);
    }
  });
}

function wireButtons(): void {
  ui.cad.addEventListener('click', () => {
    rfb?.sendCtrlAltDel();
    rfb?.focus({ preventScroll: true });
  });

  ui.scale.addEventListener('click', () => {
    const on = ui.scale.getAttribute('aria-pressed') !== 'true';
    ui.scale.setAttribute('aria-pressed', String(on));
    if (rfb !== null) {
      rfb.scaleViewport = on;
      rfb.focus({ preventScroll: true });
    }
  });

  if (!document.fullscreenEnabled) {
    ui.fullscreen.hidden = true;
  } else {
    ui.fullscreen.addEventListener('click', () => {
      if (document.fullscreenElement) void document.exitFullscreen();
      else void document.documentElement.requestFullscreen().catch(() => undefined);
    });
    document.addEventListener('fullscreenchange', () => {
      const on = document.fullscreenElement !== null;
      ui.fullscreen.setAttribute('aria-pressed', String(on));
      ui.fullscreen.textContent = on ? 'Exit full screen' : 'Full screen';
      rfb?.focus({ preventScroll: true });
    });
  }
}

function main(): void {
  ui.viewOnlyBadge.hidden = !viewOnly;
  setMachineName(document.body.dataset.title ?? '');
  wireButtons();
  const token = tokenFromLocation(window.location.search, window.location.hash);
  if (token === null) {
    showState('disconnected', 'token_invalid');
    return;
  }
  connect(token);
}

main();
