/**
 * The part of noVNC 1.7's `RFB` API (docs/API.md in `@novnc/novnc`) the console page uses. noVNC ships
 * no type declarations, so this file declares just what Porthole relies on.
 */
declare module '@novnc/novnc' {
  export interface RFBOptions {
    shared?: boolean;
    credentials?: { username?: string; password?: string; target?: string };
    repeaterID?: string;
    wsProtocols?: string[];
  }

  export interface RFBEventMap {
    connect: CustomEvent<Record<string, never>>;
    disconnect: CustomEvent<{ clean: boolean }>;
    securityfailure: CustomEvent<{ status: number; reason?: string }>;
    desktopname: CustomEvent<{ name: string }>;
  }

  export default class RFB extends EventTarget {
    /** `urlOrChannel` may be a URL or an existing WebSocket / RTCDataChannel (noVNC ≥ 1.3). */
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket, options?: RFBOptions);
    viewOnly: boolean;
    scaleViewport: boolean;
    clipViewport: boolean;
    resizeSession: boolean;
    showDotCursor: boolean;
    focusOnClick: boolean;
    background: string;
    disconnect(): void;
    sendCtrlAltDel(): void;
    focus(options?: FocusOptions): void;
    addEventListener<K extends keyof RFBEventMap>(type: K, listener: (ev: RFBEventMap[K]) => void): void;
  }
}
