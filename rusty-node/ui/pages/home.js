// Home: height, sync, peers, reachability; a live strip of recent blocks and
// projected blocks from the mempool; fee tiers.
import { get } from '../api.js';
import { h, show, card, ago, bytes, short } from '../dom.js';
import { live } from '../app.js';

function blockTile(b) {
  return h('a', { class: 'block', href: `#/block/${b.hash}`, 'data-hash': b.hash, 'data-height': b.height },
    h('div', { class: 'h' }, `#${b.height}`),
    h('div', {}, `${b.nTx} tx`),
    h('div', { class: 'muted' }, ago(b.time)));
}

/** Mempool entries by fee rate, cut into blocks of at most `maxBytes`. */
export function projectBlocks(entries, maxBytes, count = 3) {
  const list = Object.values(entries || {}).map((e) => ({
    size: e.vsize || e.size || 0,
    rate: (e.fees && e.fees.base !== undefined ? Number(e.fees.base) * 1e8 : Number(e.fee || 0) * 1e8) / Math.max(1, e.vsize || e.size || 1) * 1000,
  })).sort((a, b) => b.rate - a.rate);
  const blocks = [];
  let cur = { txs: 0, bytes: 0, rates: [] };
  for (const e of list) {
    if (cur.bytes + e.size > maxBytes && cur.txs > 0) {
      blocks.push(cur);
      if (blocks.length === count) break;
      cur = { txs: 0, bytes: 0, rates: [] };
    }
    cur.txs += 1; cur.bytes += e.size; cur.rates.push(e.rate);
  }
  if (cur.txs > 0 && blocks.length < count) blocks.push(cur);
  return { blocks, rates: list.map((e) => e.rate) };
}

function tier(rates, q) {
  if (!rates.length) return null;
  const sorted = [...rates].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export async function render() {
  const [status, recent, pool, peers] = await Promise.all([
    get('status'), get('blocks?count=8'), get('mempool'), get('peers').catch(() => []),
  ]);
  const chain = status.chain;
  const net = status.network || {};
  const inbound = peers.filter((p) => p.inbound).length;
  const syncing = chain.initialblockdownload ? 'syncing' : 'synced';
  // AutoNAT's finding (public / private / unknown), and whether others
  // reach this node through a relay.
  const relayed = net.nat && Array.isArray(net.nat.relayreservations) && net.nat.relayreservations.length ? ' · via relay' : '';
  const reach = net.networkactive === false || !net.reachability ? 'offline' : `${net.reachability}${relayed}`;

  const strip = h('div', { class: 'strip', id: 'blocks-strip' }, recent.map(blockTile));
  const projected = h('div', { class: 'strip', id: 'mempool-strip' });
  const fees = h('div', { class: 'cards', id: 'fee-tiers' });
  const maxBytes = 1000000;

  const drawPool = (p) => {
    const { blocks, rates } = projectBlocks(p.entries, maxBytes);
    projected.replaceChildren(...(blocks.length ? blocks.map((b, i) => h('div', { class: 'block projected' },
      h('div', { class: 'h' }, `+${i + 1}`), h('div', {}, `${b.txs} tx`), h('div', { class: 'muted' }, bytes(b.bytes)),
      h('div', { class: 'muted' }, `≥ ${Math.round(Math.min(...b.rates))} /kB`))) : [h('span', { class: 'muted' }, 'mempool empty')]));
    const fmt = (r) => (r === null ? '–' : `${Math.round(r)} units/kB`);
    fees.replaceChildren(card('Low priority', fmt(tier(rates, 0.1))), card('Medium', fmt(tier(rates, 0.5))), card('High priority', fmt(tier(rates, 0.9))),
      card('Min relay fee', `${Math.round(Number(p.info.mempoolminfee || 0) * 1e8)} units/kB`));
  };
  drawPool(pool);

  show(
    h('h1', {}, 'Node'),
    h('div', { class: 'cards' },
      card('Height', String(chain.blocks), 'height'),
      card('Chain', `${chain.chain} · ${syncing}`, 'sync'),
      card('Peers', `${peers.length} (${inbound} in)`, 'peers'),
      card('Reachability', reach, 'reachability'),
      card('Mempool', `${pool.info.size} tx · ${bytes(pool.info.bytes)}`, 'mempool'),
      card('ChainLock', status.chainlock ? `#${status.chainlock.height}` : 'none', 'chainlock')),
    h('h2', {}, 'Recent blocks'), strip,
    h('h2', {}, 'Projected blocks (mempool)'), projected,
    h('h2', {}, 'Fee tiers'), fees,
  );

  live.handlers.block = (header) => {
    if (!header || header.height === undefined) return;
    document.getElementById('height').textContent = String(header.height);
    if (!strip.querySelector(`[data-hash="${header.hash}"]`)) {
      strip.prepend(blockTile(header));
      while (strip.children.length > 8) strip.lastChild.remove();
    }
    get('mempool').then(drawPool).catch(() => {});
  };
  let poolSeen = `${pool.info.size}/${pool.info.bytes}`;
  live.handlers.mempool = (info) => {
    if (!info) return;
    document.getElementById('mempool').textContent = `${info.size} tx · ${bytes(info.bytes)}`;
    // The projected blocks and fee tiers follow the mempool too, not only
    // new blocks: redrawn when its size changed (events come every 2 s).
    const seen = `${info.size}/${info.bytes}`;
    if (seen !== poolSeen) {
      poolSeen = seen;
      get('mempool').then(drawPool).catch(() => {});
    }
  };
  live.handlers.resync = () => render();
  void short;
}
