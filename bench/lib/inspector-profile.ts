/**
 * In-process CPU profiling for the bench's relay processes: `profile-start` / `profile-stop FILE` on
 * their stdin, through node:inspector, so a profile covers only the measured window (not start-up,
 * module loading or the previous phases) and no profiler signal runs outside it.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

let session: Session | undefined;

export function profileStart(): Promise<void> {
  session ??= new Session();
  try { session.connect(); } catch { /* already connected */ }
  const s = session;
  return new Promise((resolve, reject) => {
    s.post('Profiler.enable', (err) => {
      if (err) return reject(err);
      s.post('Profiler.setSamplingInterval', { interval: 250 }, () => {
        s.post('Profiler.start', (e) => (e ? reject(e) : resolve()));
      });
    });
  });
}

export function profileStop(file: string): Promise<void> {
  const s = session;
  if (!s) return Promise.reject(new Error('profiler not started'));
  return new Promise((resolve, reject) => {
    s.post('Profiler.stop', (err, res) => {
      if (err) return reject(err);
      writeFileSync(file, JSON.stringify(res.profile));
      s.post('Profiler.disable', () => resolve());
    });
  });
}

/** Handles the two commands; returns false for any other line. */
export function profileCommand(cmd: string, reply: (obj: object) => void): boolean {
  if (cmd === 'profile-start') {
    profileStart().then(() => reply({ profiling: true }), (e: Error) => reply({ error: e.message }));
    return true;
  }
  if (cmd.startsWith('profile-stop ')) {
    const file = cmd.slice('profile-stop '.length);
    profileStop(file).then(() => reply({ profile: file }), (e: Error) => reply({ error: e.message }));
    return true;
  }
  return false;
}
