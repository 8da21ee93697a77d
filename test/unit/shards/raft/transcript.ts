/**
 * Transcript tests (after etcd raft's `testdata/*.txt`, run by `datadriven`): a scenario file is
 * a list of commands, each followed by `----` and the log of what happened, so a reviewer reads the
 * scenario without opening the harness. {@link runTranscript} runs the commands on a
 * {@link Cluster} and returns the file as it should be; the test compares it with the file, and
 * with REWRITE=1 writes it back.
 *
 * File format: blocks separated by blank lines. A block is optional `#` comment lines, one
 * command, a `----` line and the expected output (no blank lines in it). A block of comments
 * alone is kept as it is.
 *
 * Commands (nodes are small integers; every action delivers until the network is empty):
 *   cluster 1 2 3 [learners=4] [quiesce=Q] [election=E] [heartbeat=H] [prevote=bool]
 *           [checkquorum=bool] [transfer-timeout=T] [seed=S] [bug=NAME]
 *                          a new cluster (harness defaults; bug= injects one of config.ts's BUGS)
 *   campaign N               N starts an election now (pre-vote first)
 *   tick N [k]               ticks node N k times (default 1), delivering after each tick
 *   tick-all [k]             ticks every node k times, delivering after each tick
 *   deliver                  delivers what is in the network until nothing moves
 *   propose N text           N proposes an entry holding `text`
 *   read-lease N ctx=C       N serves a lease read (a quorum round when the lease is not valid)
 *   read-safe N ctx=C        N serves a ReadIndex read (always a quorum round)
 *   transfer N M             N (the leader) hands leadership to M
 *   wake N...                the shell wakes quiet nodes (as when it learns a node is gone)
 *   restart N                N restarts from what it persisted
 *   isolate N                drops every message from or to N, until heal
 *   drop [from=N] [to=M] [type=T,...]   drops matching messages until heal
 *   heal                     drops nothing any more
 *   redeliver type=T from=N to=M [term=X]   a late copy of the first such message ever sent arrives
 *   status N                 N's state (and, on a leader, each member's progress)
 *
 * Output lines: `1->2 App t2 prev=1/1 commit=1 [2/2 "x"]` is a message from 1 to 2 of term 2
 * (entries and positions as index/term); `(dropped)` marks one the network lost. `n2: follower
 * t2 lead=1` is a node's new role, term or leader; `n2: votes for 1`, `n2: commit=3`, `n2: quiet`,
 * `n2: awake`, `n2: read ctx=9 at index 3 (lease)` and `n2: read ctx=9 failed ReadDropped` what they
 * say. Ticks: `tick 2-4:` heads what each of ticks 2 to 4 did (the same every time).
 */
import { RaftError } from '../../../../src/shards/raft/errors.js';
import { BUGS } from '../../../../src/shards/raft/config.js';
import type { BugName, RaftConfig } from '../../../../src/shards/raft/config.js';
import type { Entry, Message, Ready } from '../../../../src/shards/raft/types.js';
import { EntryType, MessageType, NONE, messageTypeName, nodeId } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';
import type { Filter, TestNode } from './harness.js';

/** What a transcript reports of a node; a line is written when it changes. */
interface Seen {
  role: string;
  term: number;
  lead: number;
  vote: number;
  commit: number;
  quiet: boolean;
  leaseReads: number;
}

/** The harness cluster, reporting every Ready it handles and every message the network drops. */
class RecordingCluster extends Cluster {
  readonly dropped = new WeakSet<Message>();
  onReady: (n: TestNode, rd: Ready, sent: readonly Message[]) => void = () => {};

  override drop(f: Filter): void {
    super.drop((m) => {
      if (!f(m)) return false;
      this.dropped.add(m);
      return true;
    });
  }

  override handleReady(n: TestNode, rd: Ready): void {
    const before = this.sent.length;
    super.handleReady(n, rd);
    this.onReady(n, rd, this.sent.slice(before));
  }
}

const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const none = (id: number): string => (id === NONE ? 'none' : String(id));

function entry(e: Entry): string {
  const at = `${e.index}/${e.term}`;
  if (e.type === EntryType.ConfChange) return `${at} confchange`;
  return e.data.length === 0 ? `${at} noop` : `${at} ${JSON.stringify(str(e.data))}`;
}

/** One message on one line: sender, receiver, type, term, and the fields that type uses. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${messageTypeName(m.type)} t${m.term}`;
  switch (m.type) {
    case MessageType.App: {
      const ents = m.entries.length > 0 ? ` [${m.entries.map(entry).join(', ')}]` : '';
      return `${head} prev=${m.index}/${m.logTerm} commit=${m.commit}${ents}${m.commitOnly === true ? ' (commit only)' : ''}`;
    }
    case MessageType.AppResp:
      return m.reject ? `${head} rejects ${m.index} hint=${m.rejectHint}/${m.logTerm}` : `${head} match=${m.index}`;
    case MessageType.Vote:
    case MessageType.PreVote:
      return `${head} last=${m.index}/${m.logTerm}${m.context === 1 ? ' (transfer)' : ''}`;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return `${head} ${m.reject ? 'reject' : 'grant'}${m.notMember === true ? ` notMember@${m.index}` : ''}`;
    case MessageType.Heartbeat:
      return `${head} commit=${m.commit}${m.quiesce === true ? ' quiesce' : ''}`;
    case MessageType.HeartbeatResp:
    case MessageType.TimeoutNow:
      return head;
    case MessageType.ReadIndex:
      return `${head} ctx=${m.context}`;
    case MessageType.ReadIndexResp:
      return m.reject ? `${head} ctx=${m.context} rejected` : `${head} ctx=${m.context} index=${m.index}`;
    case MessageType.Snap:
      return `${head} at=${m.snapshot?.metadata.index}/${m.snapshot?.metadata.term}`;
    default:
      return head;
  }
}

/** A parsed command line: name, positional words, key=value options. */
interface Command {
  readonly name: string;
  readonly args: string[];
  readonly opts: Map<string, string>;
}

function parseCommand(line: string): Command {
  const [name = '', ...words] = line.trim().split(/\s+/);
  const args: string[] = [];
  const opts = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) opts.set(w.slice(0, eq), w.slice(eq + 1));
    else args.push(w);
  }
  return { name, args, opts };
}

function int(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || !Number.isInteger(n)) throw new Error(`${what}: expected an integer, got ${s}`);
  return n;
}

function bool(s: string, what: string): boolean {
  if (s !== 'true' && s !== 'false') throw new Error(`${what}: expected true or false, got ${s}`);
  return s === 'true';
}

function messageType(name: string): MessageType {
  const t = (MessageType as Record<string, MessageType>)[name];
  if (t === undefined) throw new Error(`unknown message type ${name}`);
  return t;
}

/** A filter on `from=`, `to=`, `type=` (comma-separated) and `term=` options; absent ones match all. */
function messageFilter(opts: Map<string, string>): Filter {
  const from = opts.has('from') ? int(opts.get('from'), 'from') : undefined;
  const to = opts.has('to') ? int(opts.get('to'), 'to') : undefined;
  const types = opts.get('type')?.split(',').map(messageType);
  const t = opts.has('term') ? int(opts.get('term'), 'term') : undefined;
  return (m) =>
    (from === undefined || m.from === from) &&
    (to === undefined || m.to === to) &&
    (types === undefined || types.includes(m.type)) &&
    (t === undefined || m.term === t);
}

/** Runs the commands of one scenario and collects what each did. */
class Runner {
  private c: RecordingCluster | undefined;
  private readonly seen = new Map<number, Seen>();
  private out: string[] = [];

  private get cluster(): RecordingCluster {
    if (!this.c) throw new Error('no cluster: start with `cluster 1 2 3`');
    return this.c;
  }

  private node(s: string | undefined): TestNode {
    return this.cluster.node(int(s, 'node'));
  }

  private snapshot(n: TestNode): Seen {
    const s = n.rn.status();
    return { role: s.role, term: s.term, lead: s.lead, vote: s.vote, commit: s.commit, quiet: s.quiesced, leaseReads: s.counters.leaseReads };
  }

  /** Lines for what changed on `n` since last reported. */
  private report(n: TestNode): void {
    const now = this.snapshot(n);
    const was = this.seen.get(n.id);
    const p = `n${n.id}:`;
    if (!was || was.role !== now.role || was.term !== now.term || was.lead !== now.lead) this.out.push(`${p} ${now.role} t${now.term} lead=${none(now.lead)}`);
    if (now.vote !== NONE && (!was || was.vote !== now.vote || was.term !== now.term)) this.out.push(`${p} votes for ${now.vote}`);
    if (was && was.commit !== now.commit) this.out.push(`${p} commit=${now.commit}`);
    if (was && was.quiet !== now.quiet) this.out.push(`${p} ${now.quiet ? 'quiet' : 'awake'}`);
    this.seen.set(n.id, { ...now, leaseReads: was?.leaseReads ?? now.leaseReads });
  }

  private reportAll(): void {
    for (const n of [...this.cluster.nodes.values()].sort((a, b) => a.id - b.id)) this.report(n);
  }

  private onReady(n: TestNode, rd: Ready, sent: readonly Message[]): void {
    this.report(n);
    for (const m of sent) this.out.push(`${formatMessage(m)}${this.cluster.dropped.has(m) ? ' (dropped)' : ''}`);
    const seen = this.seen.get(n.id)!;
    const leaseReads = n.rn.status().counters.leaseReads;
    const how = n.rn.status().role !== 'leader' ? "leader's answer" : leaseReads > seen.leaseReads ? 'lease' : 'quorum round';
    seen.leaseReads = leaseReads;
    for (const r of rd.readStates) this.out.push(`n${n.id}: read ctx=${r.context} at index ${r.index} (${how})`);
    for (const f of rd.failedReads) this.out.push(`n${n.id}: read ctx=${f.context} failed ${f.code}`);
    for (const f of rd.failedProposals) this.out.push(`n${n.id}: proposal ${f.index}/${f.term} failed ${f.code}`);
  }

  /** Delivers until the network is empty. */
  private deliver(): void {
    this.cluster.deliver();
    this.reportAll();
  }

  /** Ticks `k` times (each tick followed by delivery); runs of ticks that did the same are merged. */
  private ticks(k: number, tickOnce: () => void): void {
    const all = this.out;
    const runs: { from: number; to: number; lines: string[] }[] = [];
    for (let i = 1; i <= k; i++) {
      this.out = [];
      tickOnce();
      this.deliver();
      const last = runs[runs.length - 1];
      if (last && last.lines.join('\n') === this.out.join('\n')) last.to = i;
      else runs.push({ from: i, to: i, lines: this.out });
    }
    this.out = all;
    for (const r of runs) {
      const label = r.from === r.to ? `tick ${r.from}` : `tick ${r.from}-${r.to}`;
      if (k === 1) this.out.push(...r.lines);
      else if (r.lines.length === 0) this.out.push(`${label}: nothing`);
      else this.out.push(`${label}:`, ...r.lines.map((l) => `  ${l}`));
    }
  }

  private newCluster(cmd: Command): void {
    const ids = cmd.args.map((a) => int(a, 'node'));
    const learners =
      cmd.opts
        .get('learners')
        ?.split(',')
        .map((a) => int(a, 'learner')) ?? [];
    const opts: { -readonly [K in keyof RaftConfig]?: RaftConfig[K] } = {};
    let seed = 1;
    for (const [k, v] of cmd.opts) {
      switch (k) {
        case 'learners':
          break;
        case 'quiesce':
          opts.quiesceAfterTicks = int(v, k);
          break;
        case 'election':
          opts.electionTimeoutTicks = int(v, k);
          break;
        case 'heartbeat':
          opts.heartbeatIntervalTicks = int(v, k);
          break;
        case 'transfer-timeout':
          opts.transferTimeoutTicks = int(v, k);
          break;
        case 'prevote':
          opts.preVote = bool(v, k);
          break;
        case 'checkquorum':
          opts.checkQuorum = bool(v, k);
          break;
        case 'seed':
          seed = int(v, k);
          break;
        case 'bug':
          if (!Object.hasOwn(BUGS, v)) throw new Error(`cluster: unknown bug ${v}`);
          opts.bugs = new Set([v as BugName]);
          break;
        default:
          throw new Error(`cluster: unknown option ${k}`);
      }
    }
    this.c = new RecordingCluster(ids, opts, seed, learners);
    this.c.onReady = (n, rd, sent) => this.onReady(n, rd, sent);
    this.seen.clear();
    this.reportAll();
  }

  private status(n: TestNode): void {
    const s = n.rn.status();
    const quiet = s.quiesced ? ' quiet' : '';
    const transfer = s.leadTransferee !== NONE ? ` transferee=${s.leadTransferee}` : '';
    this.out.push(
      `n${n.id}: ${s.role} t${s.term} lead=${none(s.lead)} vote=${none(s.vote)} commit=${s.commit} applied=${s.applied} last=${s.lastIndex}${quiet}${transfer}`,
    );
    for (const [id, pr] of [...s.progress].sort((a, b) => a[0] - b[0])) {
      if (id === n.id) continue;
      this.out.push(`  ${id}: ${pr.state} match=${pr.match} next=${pr.next}${pr.isLearner ? ' learner' : ''}`);
    }
  }

  /** Runs `fn`, turning a RaftError into an output line (an operating error is an outcome). */
  private refusable(n: TestNode, fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
      this.out.push(`n${n.id}: refused ${e.code}`);
      return false;
    }
  }

  run(line: string): string[] {
    this.out = [];
    const cmd = parseCommand(line);
    switch (cmd.name) {
      case 'cluster':
        this.newCluster(cmd);
        break;
      case 'campaign':
        this.node(cmd.args[0]).rn.campaign();
        this.deliver();
        break;
      case 'tick': {
        const n = this.node(cmd.args[0]);
        this.ticks(cmd.args[1] === undefined ? 1 : int(cmd.args[1], 'ticks'), () => n.rn.tick());
        break;
      }
      case 'tick-all':
        this.ticks(cmd.args[0] === undefined ? 1 : int(cmd.args[0], 'ticks'), () => {
          for (const n of this.cluster.nodes.values()) n.rn.tick();
        });
        break;
      case 'deliver':
        this.deliver();
        break;
      case 'propose': {
        const n = this.node(cmd.args[0]);
        const text = cmd.args.slice(1).join(' ');
        this.refusable(n, () => {
          const r = n.rn.propose(new TextEncoder().encode(text));
          this.out.push(`n${n.id}: proposes ${JSON.stringify(text)} at ${r.index}/${r.term}`);
        });
        this.deliver();
        break;
      }
      case 'read-lease':
      case 'read-safe': {
        const n = this.node(cmd.args[0]);
        n.rn.readIndex(int(cmd.opts.get('ctx'), 'ctx'), cmd.name === 'read-lease' ? 'lease' : 'safe');
        this.deliver();
        break;
      }
      case 'transfer': {
        const n = this.node(cmd.args[0]);
        if (this.refusable(n, () => n.rn.transferLeader(nodeId(int(cmd.args[1], 'transferee'))))) this.deliver();
        break;
      }
      case 'wake':
        for (const a of cmd.args) this.node(a).rn.wake();
        this.deliver();
        break;
      case 'restart':
        this.cluster.restart(int(cmd.args[0], 'node'));
        this.seen.delete(int(cmd.args[0], 'node'));
        this.deliver();
        break;
      case 'isolate': {
        const id = int(cmd.args[0], 'node');
        this.cluster.drop((m) => m.from === id || m.to === id);
        break;
      }
      case 'drop':
        this.cluster.drop(messageFilter(cmd.opts));
        break;
      case 'heal':
        this.cluster.heal();
        break;
      case 'redeliver': {
        const m = this.cluster.sent.find(messageFilter(cmd.opts));
        if (m === undefined) throw new Error(`redeliver: no message ever sent matches ${line}`);
        this.out.push(`late copy: ${formatMessage(m)}`);
        this.cluster.inFlight.push(m);
        this.deliver();
        break;
      }
      case 'status':
        this.status(this.node(cmd.args[0]));
        break;
      default:
        throw new Error(`unknown command "${cmd.name}"`);
    }
    // A command whose only effect is silent (a drop rule, say) says so.
    return this.out.length > 0 ? this.out : ['ok'];
  }
}

/** One block of a scenario file. */
interface Block {
  readonly comments: string[];
  /** Absent for a block of comments alone. */
  readonly command?: string;
  readonly expected: string[];
}

export function parseTranscript(text: string): Block[] {
  const blocks: Block[] = [];
  const paragraphs = text.replace(/\n+$/, '').split(/\n\s*\n/);
  for (const p of paragraphs) {
    const lines = p.split('\n');
    const comments: string[] = [];
    let i = 0;
    while (i < lines.length && lines[i]!.startsWith('#')) comments.push(lines[i++]!);
    if (i === lines.length) {
      blocks.push({ comments, expected: [] });
      continue;
    }
    const command = lines[i++]!;
    if (lines[i] !== '----') throw new Error(`transcript: "${command}" must be followed by a ---- line`);
    blocks.push({ comments, command, expected: lines.slice(i + 1) });
  }
  return blocks;
}

/** Runs a scenario file's commands; returns the file with every command's actual output. */
export function runTranscript(text: string): string {
  const runner = new Runner();
  const parts: string[] = [];
  for (const b of parseTranscript(text)) {
    if (b.command === undefined) {
      parts.push(b.comments.join('\n'));
      continue;
    }
    let out: string[];
    try {
      out = runner.run(b.command);
    } catch (e) {
      throw new Error(`transcript: "${b.command}" failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    parts.push([...b.comments, b.command, '----', ...out].join('\n'));
  }
  return `${parts.join('\n\n')}\n`;
}
