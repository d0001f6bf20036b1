// Governance: the schedule, the treasury, proposals with their tallies, and
// voting (with a session) as this node's masternode.
import { get, post } from '../api.js';
import { h, show, table, errorBox } from '../dom.js';

// A proposal's URL comes from whoever submitted it: only http(s) becomes a
// link (a javascript: or data: URL stays plain text; the CSP would block
// it too, this does not rely on that).
function safeUrl(url) {
  try {
    return ['http:', 'https:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

export async function render() {
  const g = await get('governance');
  const proposals = g.proposals || [];
  const info = g.info || {};
  const t = g.treasury || {};
  const result = h('div', { id: 'vote-result' });
  const vote = (hash, outcome) => async () => {
    try {
      await post('governance/vote', { proposal: hash, outcome });
      result.replaceChildren(h('p', { class: 'ok' }, `voted ${outcome}`));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  };
  show(
    h('h1', {}, 'Governance'),
    h('dl', {},
      h('dt', {}, 'Next superblock'), h('dd', {}, `#${info.nextsuperblock} (every ${info.superblockcycle} blocks)`),
      h('dt', {}, 'Treasury'), h('dd', { id: 'treasury' }, `${t.balance ?? '–'} RSC, budget ${t.budget ?? info.governancebudget} RSC per superblock`),
      h('dt', {}, 'Proposal fee'), h('dd', {}, `${info.proposalfee} RSC (burned)`),
      h('dt', {}, 'Funding threshold'), h('dd', {}, `net yes ≥ ${info.fundingthreshold}`)),
    h('h2', {}, `${proposals.length} proposals`),
    proposals.length ? table(['title', 'kind', 'amount', 'yes', 'no', 'abstain', 'net / threshold', 'state', 'closes', 'vote'], proposals.map((p) => [
      safeUrl(p.url) ? h('a', { href: p.url, rel: 'noopener noreferrer', target: '_blank' }, p.title) : p.title,
      p.kind, p.amount !== undefined ? `${p.amount} RSC` : '–',
      String(p.yes), String(p.no), String(p.abstain),
      h('span', { class: p.passing ? 'ok' : 'muted' }, `${p.net_yes} / ${p.threshold}`),
      p.state, `#${p.voting_closes}`,
      h('span', {}, h('button', { onclick: vote(p.hash, 'yes') }, 'yes'), ' ', h('button', { onclick: vote(p.hash, 'no') }, 'no'), ' ', h('button', { onclick: vote(p.hash, 'abstain') }, 'abstain')),
    ]), { id: 'proposals' }) : h('p', { class: 'muted', id: 'proposals' }, 'no proposal: submit one with `rusty-cli gov submit`'),
    result,
  );
}
