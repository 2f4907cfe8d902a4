/**
 * The remote-assistance join page (`/assist/join?code=…`): the helper types the invitation code, the
 * password and a name; the gateway checks them (wrong attempts are locked out per share space and per
 * address) and answers with a one-time console URL on this origin, which the page opens view-only.
 *
 * Strict CSP, no inline script or style; every text from the gateway is put in with `textContent`.
 * Tests observe `body[data-state]` (ready | joining | error | joined) and `#message`.
 */
export {};

const JOIN_URL = 'v1/join';
const CODE_RE = /^[A-Z0-9]{8}$/;

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`join page is missing #${id}`);
  return found as T;
}

const form = byId<HTMLFormElement>('join-form');
const code = byId<HTMLInputElement>('code');
const password = byId<HTMLInputElement>('password');
const name = byId<HTMLInputElement>('name');
const button = byId<HTMLButtonElement>('join');
const message = byId<HTMLParagraphElement>('message');

function show(state: 'ready' | 'joining' | 'error' | 'joined', text: string): void {
  message.textContent = text;
  document.body.dataset.state = state;
  button.disabled = state === 'joining' || state === 'joined';
}

/** Only a console page on this origin may be opened (never a URL the answer could point elsewhere). */
function isConsoleUrl(u: unknown): u is string {
  return typeof u === 'string' && /^\/vnc\/[A-Za-z0-9._-]{1,64}\/vnc_auto\.html\?/.test(u);
}

async function join(): Promise<void> {
  const c = code.value.trim().toUpperCase();
  if (!CODE_RE.test(c)) return show('error', 'The invitation code is 8 letters and digits.');
  if (password.value === '') return show('error', 'Enter the password.');
  show('joining', 'Joining…');
  let res: Response;
  try {
    res = await fetch(JOIN_URL, {
      method: 'POST',
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ code: c, password: password.value, name: name.value }),
    });
  } catch {
    return show('error', 'The gateway could not be reached. Try again.');
  }
  const body = (await res.json().catch(() => null)) as { console_url?: unknown; error_msg?: unknown } | null;
  if (res.ok && isConsoleUrl(body?.console_url)) {
    show('joined', 'Opening the desktop…');
    password.value = '';
    window.location.assign(body.console_url);
    return;
  }
  const why = typeof body?.error_msg === 'string' ? body.error_msg : 'Could not join. Try again.';
  show('error', why);
}

function main(): void {
  const fromLink = new URLSearchParams(window.location.search).get('code');
  if (fromLink !== null && CODE_RE.test(fromLink.trim().toUpperCase())) {
    code.value = fromLink.trim().toUpperCase();
    password.focus();
  } else {
    code.focus();
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void join();
  });
}

main();
