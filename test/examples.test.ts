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
})
