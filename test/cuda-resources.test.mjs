// Static checks of the CUDA kernels, from ptxas and the PTX (scripts/cuda-resources): what the
// CUDA emulator cannot judge and no GPU is needed for. The occupancy arithmetic and the
// parsers are checked on fixed inputs; the kernels themselves when nvcc is installed.
import test from 'node:test';
import assert from 'node:assert/strict';
import { residency } from '../scripts/cuda-resources/occupancy.js';
import { buildSettings, findNvcc, parsePtx, parsePtxasLog } from '../scripts/cuda-resources/ptxas.js';
import { kernelReport } from '../scripts/cuda-resources/report.js';

test('residency: the occupancy calculator on worked cases', () => {
  // sm_80, 256 threads, 32 registers: 8 CTAs by registers (65536 / (32·32·8)), 64 warps: full.
  assert.deepEqual(residency({ threads: 256, registers: 32, sharedBytes: 0 }, 80),
    { ctas: 8, warps: 64, occupancy: 1, limitedBy: 'registers' });
  // sm_90, 116 registers: rounded to 3840 per warp, 17 warps fit, 2 CTAs of 8 warps.
  assert.deepEqual(residency({ threads: 256, registers: 116, sharedBytes: 2304 }, 90),
    { ctas: 2, warps: 16, occupancy: 0.25, limitedBy: 'registers' });
  // sm_80, 48 KiB of shared memory + 1 KiB reserved per CTA: 3 CTAs in 164 KiB.
  assert.equal(residency({ threads: 128, registers: 32, sharedBytes: 48 * 1024 }, 80).ctas, 3);
  assert.equal(residency({ threads: 128, registers: 32, sharedBytes: 48 * 1024 }, 80).limitedBy, 'shared memory');
  // sm_86 holds 48 warps: 1024-thread CTAs fit once.
  assert.deepEqual(residency({ threads: 1024, registers: 16, sharedBytes: 0 }, 86),
    { ctas: 1, warps: 32, occupancy: 32 / 48, limitedBy: 'warps' });
  // 1024 threads at 255 registers need 261,120 registers: it cannot launch.
  assert.equal(residency({ threads: 1024, registers: 255, sharedBytes: 0 }, 90).ctas, 0);
  // 32 threads, few registers: the CTA limit binds.
  assert.equal(residency({ threads: 32, registers: 16, sharedBytes: 0 }, 75).limitedBy, 'CTAs');
});

test('residency: bad input names the argument', () => {
  assert.throws(() => residency({ threads: 256, registers: 32, sharedBytes: 0 }, 70), /sm_70/);
  assert.throws(() => residency({ threads: 0, registers: 32, sharedBytes: 0 }, 90), /threads/);
  assert.throws(() => residency({ threads: 256, registers: 300, sharedBytes: 0 }, 90), /registers/);
});

test('parsePtxasLog and parsePtx read the fields they are given', () => {
  const log = [
    "ptxas info    : Compiling entry function '_Z1kPf' for 'sm_86'",
    'ptxas info    : Function properties for _Z1kPf',
    '    8 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads',
    'ptxas info    : Used 64 registers, used 1 barriers, 2304 bytes smem, 372 bytes cmem[0]',
    "ptxas info    : Compiling entry function '_Z1gv' for 'sm_90'",
    'ptxas info    : Used 9 registers, used 0 barriers',
  ].join('\n');
  assert.deepEqual(parsePtxasLog(log), [
    { mangled: '_Z1kPf', sm: 86, registers: 64, sharedBytes: 2304, stackBytes: 8, spillStores: 12, spillLoads: 4 },
    { mangled: '_Z1gv', sm: 90, registers: 9, sharedBytes: 0, stackBytes: 0, spillStores: 0, spillLoads: 0 },
  ]);
  const ptx = [
    '.visible .entry _Z1kPf(', '.param .u64 p)', '.maxntid 128, 2, 1', '.minnctapersm 3', '{',
    'ld.global.cs.v4.f32 {%f1,%f2,%f3,%f4}, [%rd1];', 'ld.global.v4.f32 {%f1,%f2,%f3,%f4}, [%rd2];',
    'st.global.cs.v4.f32 [%rd1], {%f1,%f2,%f3,%f4};', 'ld.global.f32 %f5, [%rd3];', '}',
    '.func _Z4helpv()', '{', 'ld.global.v4.f32 {%f1,%f2,%f3,%f4}, [%rd9];', '}',
    '.entry _Z1gv(', ')', '{', 'ld.shared.v4.f32 {%f1,%f2,%f3,%f4}, [%r1];', '}',
  ].join('\n');
  const entries = parsePtx(ptx);
  assert.deepEqual([...entries.keys()], ['_Z1kPf', '_Z1gv']);
  assert.deepEqual(entries.get('_Z1kPf'),
    { threads: 256, minCtasPerSm: 3, globalLoads128: 2, globalStores128: 1, sharedLoads128: 0 });
  assert.deepEqual(entries.get('_Z1gv'),
    { threads: null, minCtasPerSm: null, globalLoads128: 0, globalStores128: 0, sharedLoads128: 1 });
});

test('buildSettings reads the architectures and options of cuda.cmake', () => {
  const { options, sms } = buildSettings();
  assert.deepEqual(sms, [75, 80, 86, 89, 90]);
  assert.ok(options.includes('--fmad=false') && options.includes('-O3'), options.join(' '));
  assert.throws(() => buildSettings('project(x)'), /CRAFTGRAD_CUDA_ARCHS/);
});

const nvcc = findNvcc();
const skipReason = nvcc ? false : 'no nvcc on this machine: the kernels are not compiled, their resources not checked';
if (skipReason) console.log(`# cuda-resources: skipped, ${skipReason}`);

test('the CUDA kernels, as ptxas builds them for every SM version we ship', { skip: skipReason }, async (t) => {
  const report = await kernelReport({ nvcc });
  const { sms, kernels } = report;
  const named = (prefix) => kernels.filter((k) => k.name.startsWith(prefix));
  for (const name of ['stepKernel', 'fillKernel', 'adamwKernel', 'gemmKernel', 'meanKernel']) {
    assert.ok(named(name).length > 0, `no ${name} in the PTX (kernels: ${kernels.map((k) => k.name).join(', ')})`);
  }

  await t.test('every kernel declares its block size (__launch_bounds__)', () => {
    const undeclared = kernels.filter((k) => !k.threads).map((k) => k.name);
    assert.deepEqual(undeclared, [], 'ptxas must know the block size to budget registers, and this check to compute residency');
  });

  await t.test('no kernel spills registers or uses a stack frame', () => {
    const bad = [];
    for (const k of kernels) {
      for (const sm of sms) {
        const u = k.perSm[sm];
        assert.ok(u, `${k.name} was not compiled for sm_${sm}`);
        if (u.spillStores || u.spillLoads || u.stackBytes) {
          bad.push(`${k.name} sm_${sm}: ${u.stackBytes} B stack, ${u.spillStores}/${u.spillLoads} B spill stores/loads`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  await t.test('every kernel fits on an SM of every version (else the launch fails)', () => {
    for (const k of kernels) {
      for (const sm of sms) assert.ok(k.perSm[sm].ctas >= 1, `${k.name} on sm_${sm}: ${JSON.stringify(k.perSm[sm])}`);
    }
  });

  await t.test('the bandwidth kernels keep their 16-byte global loads and stores', () => {
    const [step] = named('stepKernel');
    // pass 1 and pass 2 each load a and r 8 rows ahead (kUnroll), pass 2 stores out.
    assert.ok(step.globalLoads128 >= 32 && step.globalStores128 >= 8, JSON.stringify(step));
    for (const k of named('adamwKernel')) {
      assert.ok(k.globalLoads128 >= 4 && k.globalStores128 >= 3, `${k.name}: ${JSON.stringify(k)}`);
    }
  });

  await t.test('the matrix products read their tiles with 16-byte shared loads', () => {
    for (const k of named('gemmKernel')) assert.ok(k.sharedLoads128 > 0, `${k.name}: ${JSON.stringify(k)}`);
  });

  await t.test('the matrix products fetch their k tiles with 16-byte global loads', () => {
    // gemmKernel<TA, TB, TBM, TBN, R>: each thread stages ceil(TB·8/4 / threads) float4s of
    // each operand's 8-deep k tile, at two fetch sites (the first tile, the pipelined next
    // one), each with a whole-tile path and an edge path: 4·(perA + perB) 16-byte loads.
    const gemms = named('gemmKernel');
    assert.equal(gemms.length, 16, gemms.map((k) => k.name).join(', '));
    for (const k of gemms) {
      const m = /^gemmKernel<(?:true|false), (?:true|false), (\d+), (\d+), (\d+)>$/.exec(k.name);
      assert.ok(m, `unexpected product kernel ${k.name}`);
      const [tbm, tbn, r] = m.slice(1).map(Number);
      const threads = (tbm / r) * (tbn / r);
      assert.equal(k.threads, threads, k.name);
      const per = (tb) => Math.ceil((tb * 8) / 4 / threads);
      const want = 4 * (per(tbm) + per(tbn));
      assert.ok(k.globalLoads128 >= want, `${k.name}: ${k.globalLoads128} 16-byte global loads, want >= ${want}`);
    }
  });
});
