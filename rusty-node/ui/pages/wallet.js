// Wallet: log in with the RPC cookie or password; balance, a receive
// address, recent transactions, and sends that show amount, fee and address
// and ask for the password again before anything leaves.
import { get, post, session, ApiError } from '../api.js';
import { h, show, table, coins, errorBox, short } from '../dom.js';

function loginForm(message) {
  const user = h('input', { id: 'login-user', placeholder: 'user (empty: the RPC cookie)', autocomplete: 'username' });
  const password = h('input', { id: 'login-password', type: 'password', placeholder: 'RPC password or cookie value', autocomplete: 'current-password' });
  const out = h('p', { id: 'login-result' }, message || '');
  const submit = async (ev) => {
    ev.preventDefault();
    try {
      await post('login', { user: user.value, password: password.value });
      await render();
    } catch (e) { out.textContent = e.message; out.className = 'error'; }
  };
  show(
    h('h1', {}, 'Wallet'),
    h('p', { class: 'muted' }, 'The wallet needs a session: log in with the RPC password, or the cookie value from <datadir>/.cookie (after "__cookie__:").'),
    h('form', { id: 'login', onsubmit: submit }, user, ' ', password, ' ', h('button', { type: 'submit', class: 'primary' }, 'Log in')),
    out,
  );
}

export async function render() {
  let w;
  try {
    w = await get('wallet');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return loginForm();
    throw e;
  }
  const b = (w.balances && w.balances.mine) || {};
  const receive = h('p', { id: 'receive-address', class: 'mono' });
  const result = h('div', { id: 'send-result' });
  const address = h('input', { id: 'send-address', placeholder: 'address', size: 50 });
  const amount = h('input', { id: 'send-amount', placeholder: 'amount (RSC)', size: 14 });
  const dialog = h('dialog', { id: 'confirm' });

  const prepare = async (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    let p;
    try {
      p = await post('wallet/prepare', { address: address.value, amount: amount.value });
    } catch (e) { result.replaceChildren(errorBox(e)); return; }
    const password = h('input', { id: 'confirm-password', type: 'password', placeholder: 'password again' });
    const send = async () => {
      try {
        const r = await post('wallet/send', { confirmation: p.confirmation, password: password.value });
        dialog.close();
        result.replaceChildren(h('p', { class: 'ok' }, 'sent: ', h('a', { id: 'sent-txid', href: `#/tx/${r.txid}`, class: 'mono' }, r.txid)));
      } catch (e) { dialog.close(); result.replaceChildren(errorBox(e)); }
    };
    dialog.replaceChildren(
      h('h2', {}, 'Send these coins?'),
      h('dl', {},
        h('dt', {}, 'Amount'), h('dd', { id: 'confirm-amount' }, coins(p.amount_units)),
        h('dt', {}, 'Fee'), h('dd', { id: 'confirm-fee' }, coins(p.fee_units)),
        h('dt', {}, 'To'), h('dd', { id: 'confirm-address', class: 'mono' }, p.address)),
      h('p', {}, password),
      h('button', { id: 'confirm-cancel', onclick: () => dialog.close() }, 'Cancel'), ' ',
      h('button', { id: 'confirm-send', class: 'primary', onclick: send }, 'Send'));
    dialog.showModal();
  };

  show(
    h('h1', {}, 'Wallet'),
    h('div', { class: 'cards' },
      h('div', { class: 'card' }, h('div', { class: 'label' }, 'Spendable'), h('div', { class: 'value', id: 'balance' }, coins(Math.round(Number(b.trusted || 0) * 1e8)))),
      h('div', { class: 'card' }, h('div', { class: 'label' }, 'Pending'), h('div', { class: 'value' }, coins(Math.round(Number(b.untrusted_pending || 0) * 1e8)))),
      h('div', { class: 'card' }, h('div', { class: 'label' }, 'Immature'), h('div', { class: 'value' }, coins(Math.round(Number(b.immature || 0) * 1e8))))),
    h('h2', {}, 'Receive'),
    h('button', { id: 'new-address', onclick: async () => { receive.textContent = (await post('wallet/address')).address; } }, 'New address'), receive,
    h('h2', {}, 'Send'),
    h('form', { id: 'send', onsubmit: prepare }, address, ' ', amount, ' ', h('button', { id: 'send-prepare', type: 'submit', class: 'primary' }, 'Review')),
    result, dialog,
    h('h2', {}, 'Recent transactions'),
    table(['txid', 'category', 'amount', 'confirmations'], (w.transactions || []).slice().reverse().map((t) => [
      h('a', { href: `#/tx/${t.txid}`, class: 'mono' }, short(t.txid)), t.category, `${Number(t.amount).toFixed(8)} RSC`, String(t.confirmations),
    ])),
    h('p', {}, h('button', { id: 'logout', onclick: async () => { await post('logout'); await session(); loginForm('logged out'); } }, 'Log out')),
  );
}
