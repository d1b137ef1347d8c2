// The login page: POST /api/v1/auth/login, keep the session, go on to `?next=` or the page for the role.
'use strict';
(function () {
  const M = window.OneMedi;
  const HOME = { dispatcher: '/console', admin: '/console', staff: '/admin', paramedic: '/field', phlebotomist: '/field', rider: '/field' };
  const form = document.getElementById('login-form');
  const error = document.getElementById('login-error');
  const next = M.safeNext(new URLSearchParams(location.search).get('next'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    const button = document.getElementById('login-submit');
    button.disabled = true;
    try {
      const s = await M.api('/api/v1/auth/login', {
        method: 'POST',
        body: { email: document.getElementById('email').value.trim(), password: document.getElementById('password').value },
      });
      M.saveSession(s);
      location.replace(next || HOME[s.user.role] || '/');
    } catch (err) {
      error.textContent = err.code === 'invalid_credentials' ? 'Email or password is wrong.' : err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
