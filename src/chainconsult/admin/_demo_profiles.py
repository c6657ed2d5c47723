"""The words of the demo experts' profiles: each skill has a few specialties, each a headline
and a sentence of bio, so that profiles differ the way real ones do (a search for "circom"
or "subgraph" finds a handful of experts, not every one who lists the skill)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from chainconsult.experts.vocabulary import Chain, Skill

# (headline, bio sentence). "{chains}" is the expert's chains, "{chain}" the first of them.
_SPECIALTIES: dict[Skill, tuple[tuple[str, str], ...]] = {
    Skill.solidity: (
        (
            "Solidity engineer for {chains}",
            "Writes upgradeable Solidity contracts with Foundry, tested with invariant fuzzing.",
        ),
        (
            "Senior Solidity developer: gas optimisation and Yul",
            "Cuts gas with storage packing, custom errors and hand-written Yul assembly.",
        ),
        (
            "Solidity developer for token launches",
            "ERC-20 and ERC-721 tokens, permit signatures, merkle airdrops and vesting wallets.",
        ),
    ),
    Skill.vyper: (
        (
            "Vyper engineer for stableswap pools",
            "Writes Vyper for Curve-style stableswap pools, gauges and vote-escrow locks.",
        ),
    ),
    Skill.rust: (
        (
            "Rust engineer for Solana programs",
            "Builds Solana programs with Anchor and the off-chain Rust services around them.",
        ),
        (
            "Rust protocol engineer: Substrate pallets",
            "Writes Substrate pallets and runtime upgrades for Polkadot parachains.",
        ),
        (
            "Rust developer for CosmWasm contracts",
            "CosmWasm smart contracts in Rust, with cw-multi-test suites.",
        ),
    ),
    Skill.move: (
        (
            "Move developer for Sui and Aptos",
            "Writes Move modules with resource safety, checked by the Move Prover.",
        ),
        (
            "Move smart contract engineer for Aptos",
            "Aptos Move packages: fungible assets, object model and on-chain randomness.",
        ),
    ),
    Skill.cairo: (
        (
            "Cairo developer for StarkNet",
            "Cairo 1 contracts and custom account contracts on StarkNet.",
        ),
        (
            "StarkNet engineer: Cairo and STARK proofs",
            "Cairo programs proven with STARKs; bridges assets between L1 and StarkNet.",
        ),
    ),
    Skill.go: (
        (
            "Go engineer for Cosmos SDK chains",
            "Cosmos SDK modules and IBC relayers written in Go.",
        ),
        (
            "Go backend engineer: Geth forks and RPC",
            "Maintains Geth forks, RPC proxies and transaction pools in Go.",
        ),
    ),
    Skill.typescript: (
        (
            "TypeScript engineer for dApp backends",
            "TypeScript services with viem and ethers.js: relayers, bots and signing queues.",
        ),
        (
            "TypeScript SDK developer for protocols",
            "Ships typed TypeScript SDKs so integrators can call the contracts safely.",
        ),
    ),
    Skill.zk_proofs: (
        (
            "Zero-knowledge engineer: Circom and Halo2 circuits",
            "Designs zk circuits in Circom and Halo2 and audits their constraints.",
        ),
        (
            "ZK proof engineer for private payments",
            "Builds zero-knowledge proofs of membership and solvency with Groth16 and PLONK.",
        ),
        (
            "zkEVM and ZK rollup researcher",
            "Works on zkEVM provers, recursive proofs and proof aggregation.",
        ),
    ),
    Skill.defi: (
        (
            "DeFi protocol designer: lending markets",
            "Designs lending markets: interest rate curves, liquidations and collateral factors.",
        ),
        (
            "DeFi engineer for AMMs and perpetuals",
            "Builds AMMs, concentrated liquidity and perpetual futures with funding rates.",
        ),
        (
            "DeFi yield strategist: vaults and aggregators",
            "ERC-4626 vaults, yield aggregators and auto-compounding strategies.",
        ),
    ),
    Skill.nft: (
        (
            "NFT marketplace engineer",
            "Marketplaces with royalties (ERC-2981), lazy minting and signed listings.",
        ),
        (
            "NFT developer for generative art drops",
            "Generative art mints, allowlists and on-chain metadata.",
        ),
    ),
    Skill.dao_governance: (
        (
            "DAO governance architect",
            "Governor contracts, timelocks, delegation and Snapshot voting for DAOs.",
        ),
        (
            "DAO tooling engineer: treasuries and multisigs",
            "Safe multisig treasuries, payroll streams and DAO operations tooling.",
        ),
    ),
    Skill.smart_contract_audit: (
        (
            "Smart contract auditor for lending protocols",
            "Security audits of lending and borrowing protocols; writes exploit proofs of concept.",
        ),
        (
            "Security auditor: formal verification with Certora",
            "Formal verification with Certora and Halmos, plus manual security review.",
        ),
        (
            "Smart contract security researcher and bug bounty hunter",
            "Finds critical bugs in bug bounty programs; reentrancy and oracle manipulation.",
        ),
    ),
    Skill.tokenomics: (
        (
            "Tokenomics consultant: emissions and vesting",
            "Models token supply, emission schedules, vesting and incentive design.",
        ),
        (
            "Token economist for play-to-earn games",
            "Balances in-game token sinks and faucets for play-to-earn economies.",
        ),
    ),
    Skill.mev: (
        (
            "MEV researcher and searcher",
            "Runs arbitrage and liquidation searchers; sends Flashbots bundles.",
        ),
        (
            "MEV protection engineer for DEXs",
            "Protects traders from sandwich attacks with private order flow and batch auctions.",
        ),
    ),
    Skill.bridges: (
        (
            "Cross-chain bridge engineer",
            "Lock-and-mint bridges with rate limits and cross-chain message passing.",
        ),
        (
            "Interoperability engineer: light clients and IBC",
            "Light client bridges and IBC connections between sovereign chains.",
        ),
    ),
    Skill.wallets: (
        (
            "Wallet engineer: account abstraction (ERC-4337)",
            "ERC-4337 smart accounts, paymasters, bundlers and passkey login.",
        ),
        (
            "Custody engineer: MPC and hardware wallets",
            "MPC key management, hardware wallet signing and key recovery for custodians.",
        ),
    ),
    Skill.indexing: (
        (
            "Indexing engineer: subgraphs and Substreams",
            "Writes subgraphs for The Graph and Substreams pipelines.",
        ),
        (
            "Blockchain data engineer: analytics pipelines",
            "On-chain analytics with Dune dashboards and event pipelines into a data warehouse.",
        ),
    ),
    Skill.oracles: (
        (
            "Oracle integration engineer: Chainlink",
            "Integrates Chainlink price feeds, VRF randomness and Automation upkeeps.",
        ),
        (
            "Oracle designer: price feeds and TWAPs",
            "Designs manipulation-resistant price oracles from TWAPs and medianised feeds.",
        ),
    ),
    Skill.layer2: (
        (
            "Layer 2 engineer: optimistic rollups",
            "Deploys OP Stack and Arbitrum Orbit rollups; sequencers and fraud proofs.",
        ),
        (
            "Rollup infrastructure engineer: data availability",
            "Data availability layers, blob transactions (EIP-4844) and rollup bridges.",
        ),
    ),
    Skill.cryptography: (
        (
            "Applied cryptographer: threshold signatures",
            "Threshold signatures, BLS aggregation and distributed key generation.",
        ),
        (
            "Cryptography engineer: elliptic curves and pairings",
            "Implements elliptic curve and pairing libraries, constant-time and fuzzed.",
        ),
    ),
    Skill.frontend_dapps: (
        (
            "Frontend dApp developer: React and wagmi",
            "React frontends with wagmi and RainbowKit: wallet connection and transaction UX.",
        ),
        (
            "Web3 frontend engineer: Next.js dashboards",
            "Next.js dashboards for protocols, with charts of on-chain positions.",
        ),
    ),
    Skill.node_infrastructure: (
        (
            "Node infrastructure engineer: validators",
            "Runs validators with slashing protection and remote signers.",
        ),
        (
            "DevOps for blockchain nodes: RPC clusters",
            "Archive nodes and load-balanced RPC clusters on Kubernetes.",
        ),
    ),
}

_CLOSINGS = (
    "Clear written reports and a handover call at the end of every engagement.",
    "Previously at a top-ten exchange; now independent.",
    "Available for short audits and longer retainers.",
    "Speaks at conferences and mentors junior engineers.",
    "Prefers small teams and well-tested code.",
    "Happy to review a codebase before quoting.",
)


def expert_texts(
    rng: random.Random, skills: Sequence[Skill], chains: Sequence[Chain], years: int
) -> tuple[str, str]:
    """A headline from the first skill's specialty and a bio with a sentence per skill."""
    chain_names = ", ".join(c.value.title() for c in chains)
    picked = [rng.choice(_SPECIALTIES[skill]) for skill in skills]
    headline = picked[0][0].format(chains=chain_names, chain=chains[0].value.title())
    bio = " ".join(
        [
            f"{years} years building on {chains[0].value.title()}.",
            *(sentence for _, sentence in picked),
            f"Shipped {rng.randint(3, 40)} production systems.",
            rng.choice(_CLOSINGS),
        ]
    )
    return headline, bio
