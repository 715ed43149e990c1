/**
 * Entry point of the single executable (scripts/build-binary.mjs bundles it): runs the CLI's
 * main() on the user's arguments. Inside the executable process.argv is [executable, executable,
 * ...arguments], like `node cli.js ...arguments`.
 */
import { main } from '../dist/agent/cli.js'

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err) => {
  process.stderr.write(`edgelink: ${String(err?.message ?? err)}\n`)
  process.exitCode = 1
})
