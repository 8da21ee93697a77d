/**
 * The status table of the client API covers every service error code (the typecheck insists,
 * this checks the running table too), and a code outside the union, even one named like a
 * property of every object, is answered 500 rather than crashing or borrowing a status.
 */
import { describe, expect, test } from 'vitest';
import { ServiceErrorCode } from '../../../src/api/index.js';
import { HttpError, HttpErrorCode, statusByCode, statusRuleOf } from '../../../src/io/http/index.js';

describe('statusByCode', () => {
  test('has exactly one rule per service error code', () => {
    expect(Object.keys(statusByCode).sort()).toEqual(Object.values(ServiceErrorCode).sort());
  });

  test('every status is an error status; retry-after (1 s) only on 503', () => {
    for (const [code, rule] of Object.entries(statusByCode)) {
      expect(rule.status, code).toBeGreaterThanOrEqual(400);
      expect(rule.status, code).toBeLessThan(600);
      if (rule.retryAfterS !== undefined) {
        expect(rule.status, code).toBe(503);
        expect(rule.retryAfterS, code).toBe(1);
      }
    }
  });

  test('each code of the HTTP layer but InvalidConfig (never a response) has a rule', () => {
    for (const code of Object.values(HttpErrorCode)) expect(statusRuleOf(code) !== undefined, code).toBe(code !== 'InvalidConfig');
  });
});

describe('codes outside the union', () => {
  const unknown = ['FluxCapacitorDrained', '', '__proto__', 'constructor', 'toString', 'valueOf', 'InvalidConfig'];

  test('have no rule', () => {
    for (const code of unknown) expect(statusRuleOf(code), code).toBeUndefined();
  });

  test('an HttpError with one is a 500 without retry-after', () => {
    for (const code of unknown) {
      const e = new HttpError(code as HttpErrorCode, 'm');
      expect(e.status, code).toBe(500);
      expect(e.headers, code).toEqual({});
      expect(JSON.parse(JSON.stringify({ error: e })), code).toEqual({ error: { code, message: 'm' } });
    }
  });

  test('a known code keeps its status and gains retry-after next to the given headers', () => {
    const e = new HttpError(ServiceErrorCode.NotLeader, 'm', { leader: 2 }, { allow: 'GET' });
    expect(e.status).toBe(503);
    expect(e.headers).toEqual({ 'retry-after': '1', allow: 'GET' });
    expect(e.toJSON()).toEqual({ leader: 2, code: 'NotLeader', message: 'm' });
  });
});
