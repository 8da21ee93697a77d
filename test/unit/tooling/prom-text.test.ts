/** The strict Prometheus text parser of test/support refuses what a scraper could misread. */
import { describe, expect, test } from 'vitest';
import { parsePrometheusText } from '../../support/prom-text.js';

const GOOD = `# HELP a_total Things.
# TYPE a_total counter
a_total{worker="0"} 3
a_total{worker="1"} 4
# HELP h_seconds Latency.
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1"} 1
h_seconds_bucket{le="+Inf"} 2
h_seconds_sum 0.3
h_seconds_count 2
# HELP g Escapes: a \\\\ and a \\n.
# TYPE g gauge
g{path="a\\"b\\\\c\\nd"} -1.5e3
`;

describe('parsePrometheusText', () => {
  test('reads families, types, help, labels with escapes and values', () => {
    const f = parsePrometheusText(GOOD);
    expect([...f.keys()]).toEqual(['a_total', 'h_seconds', 'g']);
    expect(f.get('a_total')).toMatchObject({ type: 'counter', help: 'Things.' });
    expect(f.get('h_seconds')!.samples.map((s) => s.name)).toEqual(['h_seconds_bucket', 'h_seconds_bucket', 'h_seconds_sum', 'h_seconds_count']);
    expect(f.get('g')!.help).toBe('Escapes: a \\ and a \n.');
    expect(f.get('g')!.samples[0]).toEqual({ name: 'g', labels: { path: 'a"b\\c\nd' }, value: -1500 });
  });

  test.each([
    ['a second HELP', GOOD.replace('# TYPE a_total counter', '# HELP a_total Again.\n# TYPE a_total counter')],
    ['a second TYPE', GOOD.replace('# TYPE g gauge', '# TYPE g gauge\n# TYPE g gauge')],
    ['TYPE after samples', GOOD.replace('a_total{worker="1"} 4', 'a_total{worker="1"} 4\n# TYPE a_total counter')],
    ['a sample without its family block', `${GOOD}x 1\n`],
    ['a family split in two blocks', `${GOOD}a_total{worker="2"} 1\n`],
    ['a histogram sample named like the family', GOOD.replace('h_seconds_sum 0.3', 'h_seconds 0.3')],
    ['an unknown type', GOOD.replace('# TYPE g gauge', '# TYPE g meter')],
    ['a bad value', GOOD.replace('a_total{worker="0"} 3', 'a_total{worker="0"} three')],
    ['an unquoted label value', GOOD.replace('worker="0"', 'worker=0')],
    ['a bad escape', GOOD.replace('a\\"b', 'a\\tb')],
    ['a sample given twice', GOOD.replace('a_total{worker="1"} 4', 'a_total{worker="0"} 4')],
  ])('refuses %s', (_what, text) => {
    expect(() => parsePrometheusText(text)).toThrow(/line \d+/);
  });
});
