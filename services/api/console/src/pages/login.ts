import { api, ApiError, setSession } from '../api.js';
import { h, replace } from '../dom.js';
import { errorBox, safeNext, spinner, type PageContext } from '../ui.js';

export function loginPage(ctx: PageContext): void {
  document.title = 'Log in · mcp-audit';
  const next = safeNext(ctx.query.get('next'));
  const status = h('div', { 'aria-live': 'polite', class: 'login-status' });
  const key = h('input', {
    type: 'password',
    id: 'login-key',
    name: 'key',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'login-help',
  });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const form = h(
    'form',
    { class: 'login card', novalidate: true },
    h('h1', { tabindex: '-1' }, 'mcp-audit console'),
    next !== '/'
      ? h('p', { class: 'hint' }, 'Your session ended. Log in to go back to the page you were on.')
      : null,
    h('label', { for: key.id }, 'API key'),
    key,
    h(
      'p',
      { id: 'login-help', class: 'hint' },
      'A key with the analyst, compliance or admin scope. It is exchanged for a short-lived session and not stored by the browser.',
    ),
    submit,
    status,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!key.value.trim()) {
      replace(status, errorBox(new ApiError(400, 'AUDIT_ERR_VALIDATION', 'Enter an API key.')));
      key.focus();
      return;
    }
    submit.disabled = true;
    const slow = setTimeout(() => replace(status, spinner('Logging in…')), 150);
    api
      .login(key.value.trim())
      .then((s) => {
        clearTimeout(slow);
        setSession(s);
        key.value = '';
        ctx.navigate(next, { replace: true });
      })
      .catch((err: unknown) => {
        clearTimeout(slow);
        submit.disabled = false;
        const e =
          err instanceof ApiError && err.status === 401
            ? new ApiError(401, err.code, 'That key was not accepted.')
            : err;
        replace(status, errorBox(e));
        key.select();
        key.focus();
      });
  });
  ctx.main.append(form);
  key.focus();
}
