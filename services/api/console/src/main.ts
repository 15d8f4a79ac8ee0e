import './styles.css';
import { api, ApiError, getSession, hasScope, onSessionLost, setSession } from './api.js';
import { h, replace } from './dom.js';
import { disposeCharts } from './chart-registry.js';
import { errorBox, spinner, type PageContext } from './ui.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { eventsPage } from './pages/events.js';
import { eventPage } from './pages/event.js';
import { sessionPage } from './pages/session.js';
import { clientPage } from './pages/client.js';
import { alertsPage } from './pages/alerts.js';
import { alertPage } from './pages/alert.js';
import { incidentsPage } from './pages/incidents.js';
import { incidentPage } from './pages/incident.js';
import { accessLogPage } from './pages/access-log.js';
import { holdsPage } from './pages/holds.js';

type Page = (ctx: PageContext) => void | Promise<void>;
interface Route {
  pattern: RegExp;
  page: Page;
  nav?: string;
  scope?: string;
  public?: boolean;
}

const routes: Route[] = [
  { pattern: /^\/login$/, page: loginPage, public: true },
  { pattern: /^\/$/, page: overviewPage, nav: 'overview' },
  { pattern: /^\/events$/, page: eventsPage, nav: 'events' },
  { pattern: /^\/events\/([^/]+)$/, page: eventPage, nav: 'events' },
  { pattern: /^\/sessions\/([^/]+)$/, page: sessionPage, nav: 'events' },
  { pattern: /^\/clients\/([^/]+)$/, page: clientPage, nav: 'events' },
  { pattern: /^\/alerts$/, page: alertsPage, nav: 'alerts' },
  { pattern: /^\/alerts\/([^/]+)$/, page: alertPage, nav: 'alerts' },
  { pattern: /^\/incidents$/, page: incidentsPage, nav: 'incidents' },
  { pattern: /^\/incidents\/([^/]+)$/, page: incidentPage, nav: 'incidents' },
  { pattern: /^\/holds$/, page: holdsPage, nav: 'holds', scope: 'compliance' },
  { pattern: /^\/access-log$/, page: accessLogPage, nav: 'access-log', scope: 'admin' },
];

const app = document.getElementById('app')!;
let current: AbortController | null = null;
let lastPath = '';

function navigate(url: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  void render();
}

function toLogin(): void {
  const here = location.pathname + location.search;
  const next = location.pathname === '/login' ? new URLSearchParams(location.search).get('next') : here;
  navigate(`/login${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`, { replace: true });
}
onSessionLost(toLogin);

function shell(active: string | undefined): HTMLElement {
  const s = getSession();
  const item = (id: string, href: string, label: string) =>
    h('li', null, h('a', { href, 'aria-current': active === id ? 'page' : undefined }, label));
  const logout = h(
    'button',
    {
      type: 'button',
      class: 'link-button',
      id: 'logout',
      on: {
        click: () => {
          void api
            .logout()
            .catch(() => undefined)
            .finally(() => {
              setSession(null);
              navigate('/login');
            });
        },
      },
    },
    'Log out',
  );
  const main = h('main', { id: 'main', tabindex: '-1' });
  replace(
    app,
    h(
      'a',
      {
        href: '#main',
        class: 'skip-link',
        on: {
          click: (e) => {
            e.preventDefault();
            main.focus();
          },
        },
      },
      'Skip to content',
    ),
    h(
      'header',
      { class: 'topbar' },
      h('a', { href: '/', class: 'brand' }, 'mcp-audit'),
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          null,
          item('overview', '/', 'Overview'),
          item('events', '/events', 'Events'),
          item('incidents', '/incidents', 'Incidents'),
          item('alerts', '/alerts', 'Alerts'),
          hasScope('compliance') ? item('holds', '/holds', 'Legal holds') : null,
          hasScope('admin') ? item('access-log', '/access-log', 'Access log') : null,
        ),
      ),
      s
        ? h(
            'div',
            { class: 'who' },
            h('span', { class: 'key-id', title: s.scopes.join(', ') }, s.key_id),
            logout,
          )
        : null,
    ),
    main,
  );
  return main;
}

async function render(): Promise<void> {
  current?.abort();
  disposeCharts();
  const controller = new AbortController();
  current = controller;
  const path = location.pathname.length > 1 ? location.pathname.replace(/\/+$/, '') : '/';
  const samePage = path === lastPath;
  const focusedId = samePage ? document.activeElement?.id : undefined;
  lastPath = path;

  let match: RegExpExecArray | null = null;
  const route = routes.find((r) => (match = r.pattern.exec(path)));
  if (!route?.public && !getSession()) {
    replace(app, h('main', { id: 'main' }, spinner('Checking your session…')));
    try {
      setSession(await api.current());
    } catch {
      if (controller.signal.aborted) return;
      return toLogin();
    }
    if (controller.signal.aborted) return;
  }
  if (!route) {
    const main = shell(undefined);
    main.append(
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, h('a', { href: '/' }, 'Back to the overview')),
    );
    return;
  }
  if (route.public) {
    replace(app);
    const main = h('main', { id: 'main', class: 'bare', tabindex: '-1' });
    app.append(main);
    await route.page(ctxFor(main, [], controller));
    return;
  }
  const main = shell(route.nav);
  if (route.scope && !hasScope(route.scope)) {
    main.append(
      errorBox(new ApiError(403, 'AUDIT_ERR_FORBIDDEN', `This page needs the ${route.scope} scope.`)),
    );
    return;
  }
  const params = (match as RegExpExecArray | null)?.slice(1).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  try {
    await route.page(ctxFor(main, params ?? [], controller));
  } catch (err) {
    if (!controller.signal.aborted) main.append(errorBox(err));
  }
  if (controller.signal.aborted) return;
  // Keyboard users keep their place when only the query changed; otherwise focus goes to the heading.
  const keep = focusedId ? document.getElementById(focusedId) : null;
  if (keep) keep.focus();
  else if (!samePage) main.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
  if (!samePage) window.scrollTo(0, 0);
}

function ctxFor(main: HTMLElement, params: string[], controller: AbortController): PageContext {
  return { main, params, query: new URLSearchParams(location.search), signal: controller.signal, navigate };
}

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = (ev.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (
    url.origin !== location.origin ||
    url.pathname.startsWith('/api/') ||
    url.pathname.startsWith('/assets/')
  )
    return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => void render());
void render();
