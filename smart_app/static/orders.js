// Order entry dialogue: selecting an orderable fires order-select, signing fires order-sign;
// cards are rendered by indicator with source, links and suggestions; accepting or overriding
// sends feedback. The server keeps drafts, cards and tokens; this script only names uuids.
const draftsList = document.getElementById('drafts');
const cardsBox = document.getElementById('cards');
const signedList = document.getElementById('signed');
const signButton = document.getElementById('sign');
let reviewing = false;

async function post(path, body) {
  const r = await fetch(`/smart/api/orders/${path}`, {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({error: `HTTP ${r.status}`}));
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderDrafts(drafts) {
  draftsList.replaceChildren(...drafts.map((d) => el('li', {'data-key': d.key}, d.text)));
  document.querySelectorAll('input[name=order]').forEach((box) => {
    box.checked = drafts.some((d) => d.key === box.value);
  });
  signButton.disabled = drafts.length === 0;
}

// The card detail is GitHub-flavoured markdown; only **bold** and paragraphs are rendered,
// everything else stays text (never innerHTML: the detail comes from a remote service).
function markdown(text) {
  const p = el('p');
  text.split('**').forEach((piece, i) => {
    p.appendChild(i % 2 ? el('strong', {}, piece) : document.createTextNode(piece));
  });
  return p;
}

function renderCard(card) {
  const box = el('article', {class: `card ${card.indicator}`, 'data-uuid': card.uuid,
    'aria-label': `${card.indicator}: ${card.summary}`});
  box.appendChild(el('h3', {}, card.summary));
  if (card.detail) box.appendChild(markdown(card.detail));
  const source = el('p', {class: 'muted'}, 'Source: ');
  const label = card.source && card.source.url ?
    el('a', {href: card.source.url, target: '_blank', rel: 'noopener'}, card.source.label) :
    el('span', {}, (card.source && card.source.label) || '');
  source.appendChild(label);
  box.appendChild(source);
  (card.links || []).forEach((link) => {
    const a = el('a', {href: link.url, class: `link ${link.type}`}, link.label);
    if (link.type === 'absolute') {
      a.target = '_blank';
      a.rel = 'noopener';
    }
    box.appendChild(el('p')).appendChild(a);
  });
  (card.suggestions || []).forEach((s) => {
    const b = el('button', {type: 'button', class: 'accept', 'data-suggestion': s.uuid},
      `Accept: ${s.label}`);
    b.addEventListener('click', () => act(() => post('accept', {card: card.uuid, suggestion: s.uuid})));
    box.appendChild(b);
  });
  const reasons = card.overrideReasons || [];
  const select = el('select', {'aria-label': 'Override reason'});
  select.appendChild(el('option', {value: ''}, reasons.length ? 'Reason to override…' : 'No reason needed'));
  reasons.forEach((r) => select.appendChild(el('option', {value: r.code}, r.display || r.code)));
  const dismiss = el('button', {type: 'button', class: 'override'}, 'Override');
  dismiss.addEventListener('click', () => {
    if (reasons.length && !select.value) {
      select.focus();
      return;
    }
    act(() => post('override', {card: card.uuid, reason: select.value}));
  });
  box.append(' ', select, ' ', dismiss);
  return box;
}

function renderCards(cards, errors = []) {
  const order = {critical: 0, warning: 1, info: 2};
  const sorted = [...cards].sort((a, b) => order[a.indicator] - order[b.indicator]);
  const nodes = sorted.map(renderCard);
  errors.forEach((e) => nodes.push(el('p', {role: 'alert', class: 'error'}, e)));
  if (!nodes.length) nodes.push(el('p', {class: 'muted'}, 'No cards.'));
  cardsBox.replaceChildren(...nodes);
}

function renderSigned(signed) {
  signedList.replaceChildren(...signed.map((o) =>
    el('li', {'data-id': o.id, 'data-status': o.status}, `${o.text}: ${o.status}`)));
}

async function act(fn) {
  try {
    const data = await fn();
    renderDrafts(data.drafts || []);
    renderCards(data.cards || [], data.errors || []);
    if (data.signed) renderSigned(data.signed);
    reviewing = Boolean(data.review);
    signButton.textContent = reviewing ? 'Sign anyway' : 'Sign orders';
    document.body.dataset.busy = '';
    return data;
  } catch (err) {
    cardsBox.prepend(el('p', {role: 'alert', class: 'error'}, err.message));
    document.body.dataset.busy = '';
    return undefined;
  }
}

document.querySelectorAll('input[name=order]').forEach((box) => {
  box.addEventListener('change', () => {
    document.body.dataset.busy = '1';
    act(() => post('select', {key: box.value, checked: box.checked}));
  });
});
signButton.addEventListener('click', () => {
  document.body.dataset.busy = '1';
  act(() => post('sign', {confirm: reviewing}));
});
signButton.disabled = true;
setInterval(async () => {
  if (!signedList.children.length) return;
  const r = await fetch('/smart/api/orders/status', {credentials: 'same-origin'});
  if (r.ok) renderSigned((await r.json()).signed);
}, 3000);
document.body.dataset.ordersReady = '1';
