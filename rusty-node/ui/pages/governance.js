// Governance: the schedule, the treasury, proposals with their tallies, and
// voting (with a session) as this node's masternode.
import { get, post } from '../api.js';
import { h, show, table, coins, errorBox } from '../dom.js';

export async function render() {
  const g = await get('governance');
  const proposals = Array.isArray(g.proposals) ? g.proposals : Object.values(g.proposals || {});
  const result = h('p', { id: 'vote-result' });
  const vote = (hash, outcome) => async () => {
    try {
      await post('governance/vote', { proposal: hash, outcome });
      result.textContent = `voted ${outcome}`;
      result.className = 'ok';
    } catch (e) {
      result.replaceWith(errorBox(e));
    }
  };
  const info = g.info || {};
  show(
    h('h1', {}, 'Governance'),
    h('dl', {},
      h('dt', {}, 'Next superblock'), h('dd', {}, String(info.nextsuperblock ?? '—')),
      h('dt', {}, 'Superblock cycle'), h('dd', {}, `${info.superblockcycle ?? '—'} blocks`),
      h('dt', {}, 'Treasury'), h('dd', {}, g.treasury && g.treasury.balance_units !== undefined ? coins(g.treasury.balance_units) : JSON.stringify(g.treasury ?? '—'))),
    h('h2', {}, `${proposals.length} proposals`),
    table(['name', 'amount', 'yes', 'no', 'abstain', 'funded', 'vote'], proposals.map((p) => {
      const t = p.tally || p;
      return [p.name || p.hash, p.amount !== undefined ? String(p.amount) : '', String(t.yes ?? t.YesCount ?? ''), String(t.no ?? t.NoCount ?? ''), String(t.abstain ?? t.AbstainCount ?? ''), String(p.funded ?? p.fCachedFunding ?? ''),
        h('span', {}, h('button', { onclick: vote(p.hash, 'yes') }, 'yes'), ' ', h('button', { onclick: vote(p.hash, 'no') }, 'no'))];
    }), { id: 'proposals' }),
    result,
  );
}
