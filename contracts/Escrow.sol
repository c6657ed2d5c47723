// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Milestone escrow of chainconsult projects
/// @notice One contract holds every project's escrow, keyed by the platform's project and
/// milestone ids. The client (depositor) locks an ERC-20 stablecoin per milestone and alone
/// releases it to the payee it named at its first deposit; either party may dispute a funded
/// milestone, and only the arbiter splits a disputed one. After the project's termination
/// time the client may take back what is neither released nor disputed. Nobody else, the
/// platform included, can move the tokens.
contract Escrow is ReentrancyGuard {
    using SafeERC20 for IERC20;

    enum Status {
        None,
        Funded,
        Released,
        Disputed,
        Resolved,
        Refunded
    }

    struct Project {
        address client;
        address payee;
        IERC20 token;
        uint64 terminationTime;
    }

    struct Milestone {
        uint256 amount;
        Status status;
    }

    uint16 public constant MAX_BPS = 10_000;

    address public immutable arbiter;
    address public immutable feeRecipient;
    uint16 public immutable feeBps;
    uint16 public immutable arbiterFeeBps;

    mapping(bytes32 projectId => Project) public projects;
    mapping(bytes32 projectId => mapping(bytes32 milestoneId => Milestone)) public milestones;

    event Deposited(
        bytes32 indexed projectId,
        bytes32 indexed milestoneId,
        address client,
        address payee,
        address token,
        uint256 amount
    );
    event Released(
        bytes32 indexed projectId,
        bytes32 indexed milestoneId,
        address payee,
        uint256 payeeAmount,
        uint256 platformFee
    );
    event Disputed(
        bytes32 indexed projectId,
        bytes32 indexed milestoneId,
        address disputant,
        bytes32 detailsHash
    );
    event Resolved(
        bytes32 indexed projectId,
        bytes32 indexed milestoneId,
        uint16 expertShareBps,
        uint256 clientAmount,
        uint256 payeeAmount,
        uint256 platformFee,
        uint256 arbiterFee,
        bytes32 noteHash
    );
    event Refunded(
        bytes32 indexed projectId,
        bytes32 indexed milestoneId,
        address by,
        uint256 amount
    );

    error NotClient();
    error NotParty();
    error NotArbiter();
    error NotPayee();
    error WrongStatus(Status actual);
    error ProjectTermsDiffer();
    error InvalidAmount();
    error InvalidAddress();
    error InvalidBps();
    error TerminationNotReached(uint64 terminationTime);

    constructor(address arbiter_, address feeRecipient_, uint16 feeBps_, uint16 arbiterFeeBps_) {
        if (arbiter_ == address(0)) revert InvalidAddress();
        if (feeBps_ > MAX_BPS || arbiterFeeBps_ > MAX_BPS) revert InvalidBps();
        if (feeBps_ > 0 && feeRecipient_ == address(0)) revert InvalidAddress();
        arbiter = arbiter_;
        feeRecipient = feeRecipient_;
        feeBps = feeBps_;
        arbiterFeeBps = arbiterFeeBps_;
    }

    /// @notice Lock `amount` of `token` for one milestone. The first deposit of a project
    /// fixes its client (the sender), payee, token and termination time; later deposits must
    /// repeat them, so nobody can redirect a project's funds.
    function deposit(
        bytes32 projectId,
        bytes32 milestoneId,
        IERC20 token,
        address payee,
        uint256 amount,
        uint64 terminationTime
    ) external nonReentrant {
        if (amount == 0) revert InvalidAmount();
        if (payee == address(0) || address(token) == address(0)) revert InvalidAddress();
        Project storage project = projects[projectId];
        if (project.client == address(0)) {
            projects[projectId] = Project(msg.sender, payee, token, terminationTime);
        } else if (
            project.client != msg.sender ||
            project.payee != payee ||
            project.token != token ||
            project.terminationTime != terminationTime
        ) {
            revert ProjectTermsDiffer();
        }
        Milestone storage milestone = milestones[projectId][milestoneId];
        if (milestone.status != Status.None) revert WrongStatus(milestone.status);
        milestone.amount = amount;
        milestone.status = Status.Funded;
        // Effects before the transfer; a fee-on-transfer token would leave the escrow short,
        // so the received balance is checked.
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        if (token.balanceOf(address(this)) - before != amount) revert InvalidAmount();
        emit Deposited(projectId, milestoneId, msg.sender, payee, address(token), amount);
    }

    /// @notice The client pays a funded milestone to the payee, less the platform fee.
    function release(bytes32 projectId, bytes32 milestoneId) external nonReentrant {
        Project storage project = projects[projectId];
        if (msg.sender != project.client) revert NotClient();
        Milestone storage milestone = _take(projectId, milestoneId, Status.Funded);
        milestone.status = Status.Released;
        uint256 fee = (milestone.amount * feeBps) / MAX_BPS;
        uint256 payeeAmount = milestone.amount - fee;
        _pay(project.token, feeRecipient, fee);
        _pay(project.token, project.payee, payeeAmount);
        emit Released(projectId, milestoneId, project.payee, payeeAmount, fee);
    }

    /// @notice Either party locks a funded milestone until the arbiter resolves it.
    function dispute(bytes32 projectId, bytes32 milestoneId, bytes32 detailsHash) external {
        Project storage project = projects[projectId];
        if (msg.sender != project.client && msg.sender != project.payee) revert NotParty();
        Milestone storage milestone = _take(projectId, milestoneId, Status.Funded);
        milestone.status = Status.Disputed;
        emit Disputed(projectId, milestoneId, msg.sender, detailsHash);
    }

    /// @notice The arbiter splits a disputed milestone: its fee first, then `expertShareBps`
    /// of the rest to the payee (less the platform fee) and the remainder to the client.
    function resolve(
        bytes32 projectId,
        bytes32 milestoneId,
        uint16 expertShareBps,
        bytes32 noteHash
    ) external nonReentrant {
        if (msg.sender != arbiter) revert NotArbiter();
        if (expertShareBps > MAX_BPS) revert InvalidBps();
        Project storage project = projects[projectId];
        Milestone storage milestone = _take(projectId, milestoneId, Status.Disputed);
        milestone.status = Status.Resolved;
        uint256 arbiterFee = (milestone.amount * arbiterFeeBps) / MAX_BPS;
        uint256 rest = milestone.amount - arbiterFee;
        uint256 expertShare = (rest * expertShareBps) / MAX_BPS;
        uint256 platformFee = (expertShare * feeBps) / MAX_BPS;
        uint256 clientAmount = rest - expertShare;
        _pay(project.token, arbiter, arbiterFee);
        _pay(project.token, feeRecipient, platformFee);
        _pay(project.token, project.payee, expertShare - platformFee);
        _pay(project.token, project.client, clientAmount);
        emit Resolved(
            projectId,
            milestoneId,
            expertShareBps,
            clientAmount,
            expertShare - platformFee,
            platformFee,
            arbiterFee,
            noteHash
        );
    }

    /// @notice After the termination time the client takes back a milestone that is
    /// neither released nor disputed.
    function withdraw(bytes32 projectId, bytes32 milestoneId) external nonReentrant {
        Project storage project = projects[projectId];
        if (msg.sender != project.client) revert NotClient();
        if (block.timestamp < project.terminationTime) {
            revert TerminationNotReached(project.terminationTime);
        }
        _refund(project, projectId, milestoneId);
    }

    /// @notice The payee gives a funded milestone back to the client at any time (a mutual
    /// cancellation).
    function refund(bytes32 projectId, bytes32 milestoneId) external nonReentrant {
        Project storage project = projects[projectId];
        if (msg.sender != project.payee) revert NotPayee();
        _refund(project, projectId, milestoneId);
    }

    function _refund(Project storage project, bytes32 projectId, bytes32 milestoneId) private {
        Milestone storage milestone = _take(projectId, milestoneId, Status.Funded);
        milestone.status = Status.Refunded;
        _pay(project.token, project.client, milestone.amount);
        emit Refunded(projectId, milestoneId, msg.sender, milestone.amount);
    }

    function _take(
        bytes32 projectId,
        bytes32 milestoneId,
        Status expected
    ) private view returns (Milestone storage milestone) {
        milestone = milestones[projectId][milestoneId];
        if (milestone.status != expected) revert WrongStatus(milestone.status);
    }

    function _pay(IERC20 token, address to, uint256 amount) private {
        if (amount > 0) token.safeTransfer(to, amount);
    }
}
