// Masternodes: the list with status and payouts, quorums, this node's DKG
// sessions and the best ChainLock.
import { get } from '../api.js';
import { h, show, table, short, card } from '../dom.js';

export async function render() {
  const m = await get('masternodes');
  const list = Array.isArray(m.list) ? m.list : [];
  const state = (e) => {
    const s = e.state || {};
    if (s.revoked || e.revoked) return 'revoked';
    if ((s.PoSeBanHeight !== undefined && s.PoSeBanHeight !== -1) || s.poseBanned) return 'PoSe banned';
    return 'valid';
  };
  const quorums = m.quorums ? Object.entries(m.quorums).flatMap(([type, hashes]) => (Array.isArray(hashes) ? hashes.map((q) => [type, h('span', { class: 'mono' }, short(q))]) : [])) : [];
  const dkg = Array.isArray(m.dkg) ? m.dkg : (m.dkg && Array.isArray(m.dkg.sessions) ? m.dkg.sessions : []);
  const count = m.count || {};
  show(
    h('h1', {}, 'Masternodes'),
    h('div', { class: 'cards' },
      card('Registered', String(count.total ?? list.length), 'mn-total'),
      card('Enabled', String(count.enabled ?? ''), 'mn-enabled'),
      card('ChainLock', m.chainlock ? `#${m.chainlock.height}` : 'none', 'mn-chainlock')),
    table(['proTxHash', 'status', 'service', 'registered', 'last paid', 'PoSe penalty'], list.map((e) => {
      const s = e.state || {};
      return [h('span', { class: 'mono' }, short(e.proTxHash)), state(e), s.service || '', String(s.registeredHeight ?? ''), String(s.lastPaidHeight ?? ''), String(s.PoSePenalty ?? '')];
    }), { id: 'mn-list' }),
    h('h2', {}, 'Next payees'),
    h('pre', { class: 'mono' }, m.winners ? JSON.stringify(m.winners, null, 1) : '—'),
    h('h2', {}, 'Quorums'),
    table(['type', 'quorum hash'], quorums),
    h('h2', {}, 'DKG sessions of this node'),
    dkg.length ? table(['quorum height', 'phase', 'members', 'contributions', 'complaints', 'commitment ready'], dkg.map((d) => [
      String(d.quorumHeight ?? d.quorum_height ?? ''), String(d.phase ?? ''), String(d.members ?? ''), String(d.contributions ?? ''), String(d.complaints ?? ''), String(d.commitmentReady ?? d.commitment_ready ?? ''),
    ])) : h('p', { class: 'muted' }, 'none (not a masternode, or no DKG running)'),
  );
}
