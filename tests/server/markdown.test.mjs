// The chat page's Markdown renderer (web/chat/markdown.js), run in Node:
// the blocks and inlines it promises, and that nothing in a reply can
// inject markup or script.
import { renderMarkdown } from '../../web/chat/markdown.js';
import { assert, assertEq, runTests } from './lib.mjs';

const has = (html, frag) => assert(html.includes(frag), `expected ${JSON.stringify(frag)} in ${html}`);

const failed = await runTests([
  ['markdown_renders_fenced_code_with_its_language_escaped', async () => {
    const html = renderMarkdown('Here:\n\n```c\nint main(void) { return a < b && c > d; }\n```\nafter');
    has(html, '<pre><code class="language-c">int main(void) { return a &lt; b &amp;&amp; c &gt; d; }</code></pre>');
    has(html, '<span class="code-lang">c</span>');
    has(html, '<p>after</p>');
  }],

  ['markdown_renders_an_unclosed_fence_while_streaming', async () => {
    const html = renderMarkdown('```python\nprint("hi")\nfor i in');
    has(html, '<code class="language-python">print(&quot;hi&quot;)\nfor i in</code>');
  }],

  ['markdown_renders_headings_lists_quotes_tables_and_rules', async () => {
    const html = renderMarkdown('# Title\n## Sub\n- a\n- b\n  - b1\n\n1. one\n2. two\n\n> said\n\n| x | y |\n|---|--:|\n| 1 | 2 |\n\n---');
    for (const frag of ['<h1>Title</h1>', '<h2>Sub</h2>', '<ul><li>a</li><li>b<ul><li>b1</li></ul></li></ul>',
      '<ol><li>one</li><li>two</li></ol>', '<blockquote><p>said</p></blockquote>',
      '<th class="align-right">y</th>', '<td>1</td>', '<hr>']) has(html, frag);
  }],

  ['markdown_renders_inline_emphasis_code_and_links', async () => {
    const html = renderMarkdown('**bold** *it* ~~gone~~ `x<y` [site](https://example.org/a?b=1&c=2) see https://zt.dev/x.');
    for (const frag of ['<strong>bold</strong>', '<em>it</em>', '<del>gone</del>', '<code>x&lt;y</code>',
      '<a href="https://example.org/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">site</a>',
      '<a href="https://zt.dev/x" target="_blank" rel="noopener noreferrer">https://zt.dev/x</a>.']) has(html, frag);
  }],

  ['markdown_keeps_line_breaks_of_chat_text', async () => {
    assertEq(renderMarkdown('"A fortune."\n\t\t-- Someone'), '<p>&quot;A fortune.&quot;<br>-- Someone</p>', 'html');
  }],

  ['markdown_never_passes_html_or_script_urls_through', async () => {
    const html = renderMarkdown('<img src=x onerror=alert(1)> [a](javascript:alert(1)) <script>x</script> ' +
      '[b](https://ok.org/"onmouseover="x) `</code><b>`');
    assert(!/<img|<script|<b>|href="javascript/i.test(html), `unsafe output: ${html}`);
    assert(!/"onmouseover=/.test(html), `an attribute broke out: ${html}`);
    has(html, '&lt;img src=x onerror=alert(1)&gt;');
  }],
]);

process.exitCode = failed ? 1 : 0;
