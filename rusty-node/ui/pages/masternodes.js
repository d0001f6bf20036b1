// Masternodes: the list with status and payouts, next payees, quorums, this
// node's DKG state and sessions, and the best ChainLock.
import { get } from '../api.js';
import { h, show, table, short, card } from '../dom.js';

// The node's own status (ENABLED, POSE_BANNED, REVOKED): derived from the
// state fields here, a revoked entry with reason 0 ("not specified") or no
// ban height showed as valid.
const STATUS = { ENABLED: 'valid', POSE_BANNED: 'PoSe banned', REVOKED: 'revoked' };
function status(e) {
  return STATUS[e.status] || String(e.status || 'unknown');
}

export async function render() {
  const m = await get('masternodes');
  const list = Array.isArray(m.list) ? m.list : [];
  const count = m.count || {};
  const dkg = m.dkg || {};
  const sessions = dkg.activeSessions || [];
  const quorums = Object.entries(m.quorums || {}).flatMap(([type, hashes]) => (hashes || []).map((q) => [type, h('span', { class: 'mono' }, q)]));
  const winners = Object.entries(m.winners || {}).sort((a, b) => Number(b[0]) - Number(a[0])).slice(0, 6);
  show(
    h('h1', {}, 'Masternodes'),
    h('div', { class: 'cards' },
      card('Registered', String(count.total ?? list.length), 'mn-total'),
      card('Enabled', String(count.enabled ?? '–'), 'mn-enabled'),
      card('Quorums', String(quorums.length), 'mn-quorums'),
      card('Next DKG', dkg.nextDkgHeight !== undefined ? `#${dkg.nextDkgHeight} (in ${dkg.blocksUntilNextDkg})` : '–', 'mn-dkg'),
      card('ChainLock', m.chainlock ? `#${m.chainlock.height}` : 'none', 'mn-chainlock')),
    list.length
      ? table(['proTxHash', 'status', 'service', 'registered', 'last paid', 'PoSe penalty', 'payout'], list.map((e) => {
        const s = e.state || {};
        return [h('span', { class: 'mono' }, short(e.proTxHash)), status(e), s.service || '', String(s.registeredHeight ?? ''), String(s.lastPaidHeight ?? ''), String(s.PoSePenalty ?? ''), h('span', { class: 'mono' }, short(s.payoutAddress || ''))];
      }), { id: 'mn-list' })
      : h('p', { class: 'muted', id: 'mn-list' }, 'no masternode registered'),
    h('h2', {}, 'Payees of recent blocks'),
    table(['height', 'payee'], winners.map(([height, payee]) => [height, h('span', { class: 'mono' }, payee)])),
    h('h2', {}, 'Quorums'),
    quorums.length ? table(['type', 'quorum hash'], quorums) : h('p', { class: 'muted' }, 'no quorum mined yet'),
    h('h2', {}, 'DKG of this node'),
    h('p', { class: 'muted' }, dkg.note || (dkg.masternode ? `masternode ${short(dkg.proTxHash || '')}` : '')),
    sessions.length ? table(['quorum height', 'phase', 'members', 'contributions', 'complaints', 'justifications', 'commitment ready'], sessions.map((d) => [
      String(d.quorumHeight), d.phase, String(d.members), String(d.contributions), String(d.complaints), String(d.justifications), d.commitmentReady ? 'yes' : 'no',
    ]), { id: 'dkg-sessions' }) : h('p', { class: 'muted' }, 'no DKG session running'),
  );
}
