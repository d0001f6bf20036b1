// Explorer: a block, a transaction, an address. Everything is asked of the
// node itself; no indexer (an address page scans the UTXO set: its balance
// and unspent outputs, not its history).
import { get } from '../api.js';
import { h, show, table, ago, short } from '../dom.js';

const link = (kind, id, text) => h('a', { href: `#/${kind}/${id}`, class: 'mono' }, text || id);

export async function block(id) {
  const b = await get(`block/${encodeURIComponent(id)}`);
  const txs = b.tx || [];
  show(
    h('h1', {}, `Block #${b.height}`),
    h('dl', {},
      h('dt', {}, 'Hash'), h('dd', { id: 'block-hash', class: 'mono' }, b.hash),
      h('dt', {}, 'Confirmations'), h('dd', {}, String(b.confirmations)),
      h('dt', {}, 'Time'), h('dd', {}, `${new Date(b.time * 1000).toISOString()} (${ago(b.time)})`),
      h('dt', {}, 'Previous'), h('dd', {}, b.previousblockhash ? link('block', b.previousblockhash) : '—'),
      h('dt', {}, 'Next'), h('dd', {}, b.nextblockhash ? link('block', b.nextblockhash) : '—'),
      h('dt', {}, 'Merkle root'), h('dd', { class: 'mono' }, b.merkleroot),
      h('dt', {}, 'Size'), h('dd', {}, `${b.size} bytes`),
      h('dt', {}, 'Difficulty'), h('dd', {}, String(b.difficulty)),
      h('dt', {}, 'ChainLock'), h('dd', {}, b.chainlock === true ? 'locked' : (b.chainlock === false ? 'not locked' : '—'))),
    h('h2', {}, `${txs.length} transactions`),
    table(['txid', 'outputs', 'value'], txs.map((t) => [
      link('tx', t.txid, short(t.txid)),
      String((t.vout || []).length),
      `${(t.vout || []).reduce((s, o) => s + Number(o.value || 0), 0).toFixed(8)} RSC`,
    ]), { id: 'block-txs' }),
  );
}

export async function tx(txid) {
  const t = await get(`tx/${txid}`);
  const ins = (t.vin || []).map((i) => [
    i.coinbase !== undefined ? 'coinbase' : link('tx', i.txid, `${short(i.txid)}:${i.vout}`),
  ]);
  const outs = (t.vout || []).map((o) => {
    const spk = o.scriptPubKey || {};
    const addr = spk.address || (spk.addresses && spk.addresses[0]);
    return [String(o.n), `${Number(o.value).toFixed(8)} RSC`, addr ? link('address', addr) : (spk.type || '')];
  });
  show(
    h('h1', {}, 'Transaction'),
    h('dl', {},
      h('dt', {}, 'Txid'), h('dd', { id: 'tx-id', class: 'mono' }, t.txid),
      h('dt', {}, 'Block'), h('dd', {}, t.blockhash ? link('block', t.blockhash) : 'in the mempool'),
      h('dt', {}, 'Confirmations'), h('dd', {}, String(t.confirmations || 0)),
      h('dt', {}, 'Size'), h('dd', {}, `${t.size} bytes`)),
    h('h2', {}, 'Inputs'), table(['spends'], ins),
    h('h2', {}, 'Outputs'), table(['n', 'value', 'to'], outs),
  );
}

export async function address(addr) {
  const a = await get(`address/${encodeURIComponent(addr)}`);
  const utxos = a.utxos || [];
  show(
    h('h1', {}, 'Address'),
    h('dl', {},
      h('dt', {}, 'Address'), h('dd', { id: 'address', class: 'mono' }, a.address),
      h('dt', {}, 'Balance'), h('dd', { id: 'address-balance' }, `${(a.balance_units / 1e8).toFixed(8)} RSC`),
      h('dt', {}, 'Unspent outputs'), h('dd', {}, utxos.length >= a.limit ? `${utxos.length} (the first ${a.limit})` : String(utxos.length))),
    h('p', { class: 'muted' }, 'From a scan of the UTXO set: the node keeps no address index, so spent history is not shown.'),
    table(['output', 'value', 'height'], utxos.map((u) => [
      link('tx', u.txid, `${short(u.txid)}:${u.outputIndex}`), `${(u.satoshis / 1e8).toFixed(8)} RSC`, String(u.height),
    ])),
  );
}
