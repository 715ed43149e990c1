import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { VERSION } from '../lib/index.ts'

const run = promisify(execFile)

describe('examples and package metadata', function () {
  this.timeout(30_000)

  it('examples/link-two-hosts runs and links two hosts', async () => {
    const { stdout } = await run(process.execPath, ['dist/examples/link-two-hosts.js'])
    expect(stdout).to.match(/link status: Completed/)
    expect(stdout).to.match(/follower sees leader \(leader\)/)
  })

  it('the library reports the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8'))
    expect(VERSION).to.equal(pkg.version)
  })

  it('the launcher, the single binary and the benchmarks run the agent with the same Node flags', async () => {
    const { AGENT_NODE_FLAGS } = await import('../benchmarks/lib.ts')
    const launcher = await readFile(new URL('../../bin/edgelink', import.meta.url), 'utf8')
    const exec = launcher.split('\n').filter(l => /^exec /.test(l))
    expect(exec).to.deep.equal([`exec "$node_bin" ${AGENT_NODE_FLAGS.join(' ')} "$cli" "$@"`])
    const builder = await readFile(new URL('../../scripts/build-binary.mjs', import.meta.url), 'utf8')
    const argv = builder.match(/^const EXEC_ARGV = (\[.*\])$/m)
    expect(argv, 'EXEC_ARGV in scripts/build-binary.mjs').to.not.equal(null)
    expect(JSON.parse((argv as RegExpMatchArray)[1].replace(/'/g, '"'))).to.deep.equal([...AGENT_NODE_FLAGS])
  })
})
