// A small Markdown renderer for chat replies: Markdown in, safe HTML out.
//
// Safety first: every piece of source text is HTML-escaped before any tag
// is added, raw HTML in the source stays text, and links keep only http(s)
// and mailto targets. Streaming-friendly: it renders any prefix of a reply
// (an unclosed ``` fence is a code block that runs to the end), so the page
// can re-render the whole reply on every token.
//
// Blocks: fenced code (``` or ~~~, with a language), ATX headings, block
// quotes, bulleted and numbered lists (nested by indentation), GFM tables,
// horizontal rules, paragraphs (a single newline is a line break, as chat
// text means it). Inlines: `code`, **bold**, *italic*, ~~strike~~,
// [links](https://...), bare https:// URLs.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ESC[c]);
}

function safeUrl(url) {
  const u = url.trim();
  return /^(https?:\/\/|mailto:)/i.test(u) ? u : null;
}

// Inline markup of one run of text (no newlines inside code spans matter).
export function renderInline(src) {
  // Code spans first: their contents are literal. Split on them, keeping them.
  const parts = src.split(/(`+)([\s\S]*?[^`])\1(?!`)/);
  let out = '';
  for (let i = 0; i < parts.length; i++) {
    if (i % 3 === 0) out += inlineText(parts[i]);
    else if (i % 3 === 2) out += '<code>' + escapeHtml(parts[i].replace(/^ (.*) $/s, '$1')) + '</code>';
  }
  return out;
}

function inlineText(text) {
  // Links and bare URLs are cut out before escaping so their targets stay
  // intact; everything else is escaped, then emphasis applies.
  const pieces = [];
  const linkRe = /\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
  let last = 0;
  let m;
  while ((m = linkRe.exec(text))) {
    pieces.push(emphasis(escapeHtml(text.slice(last, m.index))));
    const href = safeUrl(m[1] ? m[2] : m[3]);
    const label = m[1] ? emphasis(escapeHtml(m[1])) : escapeHtml(m[3]);
    pieces.push(href
      ? `<a href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer">${label}</a>`
      : escapeHtml(m[0]));
    last = m.index + m[0].length;
  }
  pieces.push(emphasis(escapeHtml(text.slice(last))));
  return pieces.join('');
}

// Emphasis over already-escaped text (the markers * _ ~ are not escaped).
function emphasis(s) {
  return s
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, '$1<strong>$2</strong>')
    .replace(/\*(?=[^\s*])([^*]*?[^\s*])\*/g, '<em>$1</em>')
    .replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

function codeBlock(lang, code) {
  const label = lang ? escapeHtml(lang) : 'text';
  const cls = lang ? ` class="language-${escapeHtml(lang)}"` : '';
  return `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy-code">copy</button></div>` +
    `<pre><code${cls}>${escapeHtml(code)}</code></pre></div>`;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

function table(lines) {
  const head = splitRow(lines[0]);
  const align = splitRow(lines[1]).map((c) =>
    c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : '');
  const cell = (tag, text, i) =>
    `<${tag}${align[i] ? ` class="align-${align[i]}"` : ''}>${renderInline(text)}</${tag}>`;
  let html = '<table><thead><tr>' + head.map((c, i) => cell('th', c, i)).join('') + '</tr></thead><tbody>';
  for (const row of lines.slice(2)) {
    const cells = splitRow(row);
    html += '<tr>' + head.map((_, i) => cell('td', cells[i] || '', i)).join('') + '</tr>';
  }
  return html + '</tbody></table>';
}

// Lists: items by indentation; an item's continuation lines and nested
// lists belong to it.
function list(lines) {
  const first = lines[0].match(ITEM);
  const baseIndent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const start = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  for (const line of lines) {
    const m = line.match(ITEM);
    if (m && m[1].length <= baseIndent + 1) items.push([m[3]]);
    else items[items.length - 1].push(line.slice(Math.min(baseIndent + 2, line.search(/\S|$/))));
  }
  const tag = ordered ? 'ol' : 'ul';
  const attr = ordered && start !== 1 ? ` start="${start}"` : '';
  return `<${tag}${attr}>` + items.map((it) => {
    const [text, ...rest] = it;
    const inner = rest.length ? renderInline(text) + renderBlocks(rest) : renderInline(text);
    return `<li>${inner}</li>`;
  }).join('') + `</${tag}>`;
}

function renderBlocks(lines) {
  let html = '';
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) { i++; continue; }
    if ((m = line.match(FENCE))) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(fence[0].repeat(fence.length)) &&
                                   lines[i].trim().replace(new RegExp(`^\\${fence[0]}+`), '').trim() === '')) {
        body.push(lines[i++]);
      }
      if (i >= lines.length) while (body.length && !body[body.length - 1].trim()) body.pop(); // still streaming
      i++; // the closing fence (or the end)
      html += codeBlock(m[2], body.join('\n'));
      continue;
    }
    if ((m = line.match(HEADING))) {
      const level = m[1].length;
      html += `<h${level}>${renderInline(m[2])}</h${level}>`;
      i++;
      continue;
    }
    if (RULE.test(line)) { html += '<hr>'; i++; continue; }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (m = lines[i].match(QUOTE))) { body.push(m[1]); i++; }
      html += `<blockquote>${renderBlocks(body)}</blockquote>`;
      continue;
    }
    if (ITEM.test(line) && !RULE.test(line)) {
      const first = line.match(ITEM);
      const ordered = /\d/.test(first[2]);
      // an item of the other kind at this level starts another list
      const sibling = (l) => {
        const m = l.match(ITEM);
        return m && m[1].length <= first[1].length + 1 && /\d/.test(m[2]) === ordered;
      };
      const nested = (l) => /^\s+\S/.test(l) && l.search(/\S/) > first[1].length + 1;
      const body = [line];
      i++;
      while (i < lines.length) {
        const l = lines[i];
        if (!l.trim()) {
          // a blank line ends the list unless the next line continues it
          const next = lines[i + 1];
          if (next !== undefined && (sibling(next) || nested(next))) { body.push(l); i++; continue; }
          break;
        }
        if (sibling(l) || nested(l)) { body.push(l); i++; continue; }
        if (ITEM.test(l)) break;
        if (FENCE.test(l) || HEADING.test(l) || QUOTE.test(l)) break;
        body.push('  ' + l.trim()); // a lazy continuation of the item
        i++;
      }
      html += list(body.filter((l) => l.trim()));
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) &&
        lines[i + 1].includes('-')) {
      const rows = [line, lines[i + 1]];
      i += 2;
      while (i < lines.length && lines[i].includes('|') && lines[i].trim()) rows.push(lines[i++]);
      html += table(rows);
      continue;
    }
    // a paragraph: up to a blank line or the start of another block
    const para = [];
    while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
           !QUOTE.test(lines[i]) && !(ITEM.test(lines[i]) && para.length === 0) && !RULE.test(lines[i])) {
      para.push(lines[i].trim());
      i++;
      if (i < lines.length && ITEM.test(lines[i])) break;
    }
    if (!para.length) { para.push(lines[i].trim()); i++; }
    html += `<p>${para.map(renderInline).join('<br>')}</p>`;
  }
  return html;
}

export function renderMarkdown(src) {
  return renderBlocks(String(src).replace(/\r\n?/g, '\n').split('\n'));
}
