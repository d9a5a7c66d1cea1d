// A run written by an earlier version, whose config.json and checkpoints lack the keys added
// since (the Qwen2 options: model, lora_targets, bridge_span, init_adapter, init_policy; the
// VLA-Adapter options: head_noise, views, use_proprio, vla_config; the RLDS ones: stats,
// shuffle_buffer),
// resumes: a missing key reads as the default the earlier version ran with. A key that is
// present keeps being checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const ADDED = ['model', 'lora_targets', 'bridge_span', 'init_adapter', 'init_policy', 'head_noise', 'views', 'use_proprio', 'vla_config', 'stats', 'shuffle_buffer'];
const TINY = ['--width', '16', '--tokens', '4', '--blocks', '2', '--rank', '2', '--head-width', '16', '--save-every', '2', '--quiet', '--threads', '1'];

/** Rewrites a JSON file with `edit` applied to its `config`, and the manifest's entry for it when in a checkpoint. */
function editConfig(file, edit) {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  edit(j.config);
  const bytes = Buffer.from(JSON.stringify(j, null, 2) + '\n');
  writeFileSync(file, bytes);
  const manifest = join(file, '..', 'manifest.json');
  if (!file.endsWith('state.json')) return;
  const m = JSON.parse(readFileSync(manifest, 'utf8'));
  m.files['state.json'] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  writeFileSync(manifest, JSON.stringify(m, null, 2) + '\n');
}

function everyConfig(run) {
  const ck = join(run, 'checkpoints');
  return [join(run, 'config.json'), ...readdirSync(ck).map((d) => join(ck, d, 'state.json'))];
}

test('a run whose config predates the Qwen2 options resumes; one whose saved value differs is still refused', (t) => {
  const dir = tempDir(t, 'craftgrad-older-');
  for (const name of ['old', 'changed']) {
    const r = runCli(['train', '--out', dir, '--name', name, '--steps', '4', ...TINY]);
    assert.equal(r.code, 0, r.stderr);
  }
  for (const f of everyConfig(join(dir, 'old'))) editConfig(f, (c) => ADDED.forEach((k) => delete c[k]));
  const ok = runCli(['train', '--resume', join(dir, 'old'), '--steps', '6', '--quiet']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(readFileSync(join(dir, 'old', 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)).step, 6);

  for (const f of everyConfig(join(dir, 'changed'))) editConfig(f, (c) => (c.bridge_span = 'prefix+prompt'));
  const refused = runCli(['train', '--resume', join(dir, 'changed'), '--steps', '6', '--bridge-span', 'prefix', '--quiet']);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--bridge-span \(saved "prefix\+prompt", requested "prefix"\)/);
});
