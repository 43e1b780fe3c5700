"""The `playdeck` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from tui import __version__
from tui.core.config import configured_nodes
from tui.core.durations import DurationError, parse_duration
from tui.core.planning.jobfile import InputError, Problem, load_job_file, playbook_problem
from tui.core.planning.spec import JobSpec, spec_for_playbook
from tui.core.sanitize import strip_sgr
from tui.core.storage.paths import check_writable
from tui.core.storage.paths import state_dir as default_state_dir

if TYPE_CHECKING:
    from tui.core.planning.preflight import Check

EXIT_INVALID = 2
EXIT_UNREACHABLE = 3  # as the verbs: no server could be reached or started
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _err(text: str) -> None:
    """One line on stderr, as plain text (it may quote a job file); a dead stderr is not an error."""
    try:
        print(strip_sgr(text), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _state_dir_problem(path: Path | None) -> str | None:
    """A state dir that cannot be written, as one line naming it; None when it can."""
    path = (path.expanduser() if path is not None else default_state_dir()).absolute()
    why = check_writable(path)
    return None if why is None else f"playdeck: state dir {path} {why}"


class Interrupted(Exception):
    """A signal arrived while `playdeck run` was still checking its input."""

    def __init__(self, signo: int):
        super().__init__(signo)
        self.signo = signo


def _raise_interrupted(signo: int, _frame: object) -> None:
    raise Interrupted(signo)


def _catch_interrupts() -> None:
    """Until the run starts, SIGINT/SIGTERM/SIGHUP end the checks (and what they started) cleanly;
    a SIGHUP that nohup set to be ignored stays ignored."""
    for sig in INTERRUPT_SIGNALS:
        if sig is signal.SIGHUP and signal.getsignal(sig) is signal.SIG_IGN:
            continue
        signal.signal(sig, _raise_interrupted)


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playdeck run",
        description="Run a job file, or playbooks against an inventory, without the console. "
        "Exit status: 0 when every job succeeds, 1 when any does not, 2 on invalid input "
        "(or a state dir or --json file that cannot be written). SIGINT (Ctrl-C), SIGTERM and "
        "SIGHUP cancel every job, still write --json, and exit 128+signal: 130, 143 and 129. "
        "A SIGHUP ignored at start (nohup) stays ignored.",
    )
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="JOBFILE|PLAYBOOK",
        help="one job file, or one or more playbooks (one job each, needs -i)",
    )
    parser.add_argument("-i", "--inventory", help="inventory for playbooks given directly")
    parser.add_argument("-l", "--limit", help="host pattern for playbooks given directly")
    parser.add_argument("--timeout", help="per-attempt timeout: seconds, or 90s / 5m / 1h (0 = none)")
    parser.add_argument("--retries", type=int, help="automatic retries after failure or timeout")
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra variable for playbooks given directly (repeatable)",
    )
    parser.add_argument("--max-parallel", type=int, help="jobs running at once (default: the job file's, else 4)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the run summary as JSON to FILE")
    parser.add_argument("--state-dir", type=Path, help="where logs go (default $XDG_STATE_HOME/playdeck)")
    parser.add_argument(
        "--no-preflight",
        action="store_true",
        help="skip checking inventories and limits with Ansible before anything runs "
        "(a job file with lock: hosts then is invalid input)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="run jobs that touch the job file's protected hosts (protect:); without it they exit 2, "
        "naming the job and the hosts; audited either way",
    )
    return parser


def _is_job_file(path: Path, inventory_given: bool) -> bool:
    """A job file is a mapping (with `jobs:`); a playbook is a list of plays.

    Unparseable YAML is taken for a job file (whose loader names the line)
    unless -i says a playbook was meant (Ansible then reports its syntax error).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return not inventory_given
    return isinstance(data, dict)


def _specs_from_args(args: argparse.Namespace) -> tuple[list[JobSpec], int | None, tuple[str, ...]]:
    """The jobs, the job file's max_parallel and its protected host patterns."""
    targets = [Path(t).expanduser().resolve() for t in args.targets]
    missing = [Problem(t, None, "", "does not exist") for t in targets if not t.is_file()]
    if missing:
        raise InputError(missing)
    if len(targets) == 1 and _is_job_file(targets[0], args.inventory is not None):
        flags = [f for f in ("inventory", "limit", "timeout", "retries") if getattr(args, f) is not None]
        if flags or args.extra_vars:
            raise InputError(
                [
                    Problem(
                        targets[0],
                        None,
                        "",
                        f"--{(flags or ['extra-vars'])[0].replace('_', '-')} "
                        "applies to playbooks given directly; put it in the job file instead",
                    )
                ]
            )
        job_file = load_job_file(targets[0], configured_nodes())
        return job_file.jobs, job_file.max_parallel, job_file.protect
    problems: list[Problem] = []
    if not args.inventory:
        problems.append(Problem(targets[0], None, "-i", "running a playbook needs an inventory: -i INVENTORY"))
    inventory = Path(args.inventory).expanduser().resolve() if args.inventory else None
    if inventory is not None and not inventory.exists():
        problems.append(Problem(inventory, None, "-i", "does not exist"))
    try:
        timeout = parse_duration(args.timeout)
    except DurationError as exc:
        problems.append(Problem(targets[0], None, "--timeout", str(exc)))
        timeout = None
    if args.retries is not None and args.retries < 0:
        problems.append(Problem(targets[0], None, "--retries", "must be 0 or more"))
    extra_vars = {}
    for item in args.extra_vars:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(Problem(targets[0], None, "-e", f"{item!r} is not KEY=VALUE"))
        extra_vars[key] = value
    if problems:
        raise InputError(problems)
    for target in targets:
        problem = playbook_problem(target)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise InputError(problems)
    specs = []
    names: set[str] = set()
    for target in targets:
        name = target.stem
        suffix = 2
        while name in names:
            name, suffix = f"{target.stem}-{suffix}", suffix + 1
        names.add(name)
        specs.append(
            spec_for_playbook(
                target,
                inventory,
                name=name,
                limit=args.limit,
                timeout=timeout,
                retries=args.retries,
                extra_vars=extra_vars or None,
            )
        )
    return specs, None, ()


def _preflight(
    specs: list[JobSpec], source: Path, protect: tuple[str, ...]
) -> tuple[Check, Callable[[], list[JobSpec]]]:
    """Inventories and limits checked by Ansible itself, so nothing starts on input it rejects;
    the same check resolves each job's hosts (for locks) and the protected ones among them.
    Starts the check; the returned call raises InputError once the answer says so, else
    gives the specs with their resolved hosts."""
    from tui.core.planning.preflight import start_check  # noqa: PLC0415

    check = start_check(specs, protect)

    def verdict() -> list[JobSpec]:
        found = check()
        if found:
            raise InputError([Problem(source, None, f"job {name!r}", why) for name, why in found.items()])
        return check.resolved()

    return check, verdict


def _unlocked(specs: list[JobSpec], source: Path) -> None:
    """Without the preflight no host is resolved: a `lock: hosts` job could lock nothing."""
    from tui.core.scheduling.locks import UnresolvedLock, check_resolved  # noqa: PLC0415

    try:
        check_resolved(specs)
    except UnresolvedLock as exc:
        raise InputError([Problem(source, None, "lock", f"{exc} (--no-preflight)")]) from None


def _protected(args: argparse.Namespace, check: Check | None, specs: list[JobSpec], protect: tuple[str, ...]) -> bool:
    """Whether the run may go on: jobs touching protected hosts need --yes. Audited either way
    (one entry per job), and refused with the job and its hosts named."""
    from tui.core.scheduling import protect as protection  # noqa: PLC0415
    from tui.core.storage.audit import AuditLog  # noqa: PLC0415

    if not protect:
        return True
    if check is not None:
        found = protection.touched(check.protected)
        said = protection.lines(found, protect)
    else:  # unresolved: every job may touch one
        found = {spec.name: [] for spec in specs}
        said = protection.unchecked_lines(list(found), protect)
    if not found:
        return True
    audit = AuditLog((args.state_dir or default_state_dir()) / "audit.jsonl")
    for name, hosts in found.items():
        action = "protect-confirmed" if args.yes else "protect-refused"
        audit.record(
            action,
            name,
            hosts=hosts or None,
            protect=list(protect),
            via="playdeck run --yes" if args.yes else "playdeck run",
        )
    if args.yes:
        return True
    _err("playdeck: protected targets, nothing was run (confirm with --yes):")
    for line in said:
        _err(f"  {line}")
    return False


def _unusable_nodes(specs: list[JobSpec]) -> list[str]:
    """Each node the jobs use is asked first (reachable, same playdeck and ansible-core): no job
    is placed on a node that cannot run it. One line per unusable node, naming it."""
    nodes = {spec.node.name: spec.node for spec in specs if spec.node is not None}
    if not nodes:
        return []
    import asyncio  # noqa: PLC0415

    from tui.core.planning.nodes import probe_problem  # noqa: PLC0415
    from tui.core.running import node_link  # noqa: PLC0415

    async def ask() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(node_link.probe(node) for node in nodes.values())))

    answers = asyncio.run(ask())
    return [why for node, answer in zip(nodes.values(), answers) if (why := probe_problem(node, answer))]


def cmd_run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    if args.max_parallel is not None and args.max_parallel < 1:
        _err("playdeck: --max-parallel must be at least 1")
        return EXIT_INVALID
    check: Check | None = None
    _catch_interrupts()
    try:
        specs, file_parallel, protect = _specs_from_args(args)
        problem = _state_dir_problem(args.state_dir)
        if problem is not None:
            _err(problem + ", nothing was run")
            return EXIT_INVALID
        verdict = None
        source = Path(args.targets[0]).expanduser().resolve()
        if args.no_preflight:
            _unlocked(specs, source)
        else:
            check, verdict = _preflight(specs, source, protect)
        from tui.headless import Interrupt, latch_signals, run_headless  # rich and asyncio, while the check runs

        if verdict is not None:
            specs = verdict()
        if not _protected(args, check, specs, protect):
            return EXIT_INVALID
        unusable = _unusable_nodes(specs)
        if unusable:
            _err("playdeck: nodes that cannot run these jobs, nothing was run:")
            for line in unusable:
                _err(f"  {line}")
            return EXIT_INVALID
        interrupt = Interrupt()
        latch_signals(interrupt)  # from here a signal cancels the jobs: the loop takes it over
    except InputError as exc:
        _err("playdeck: invalid input, nothing was run:")
        for item in exc.problems:
            _err(f"  {item}")
        return EXIT_INVALID
    except Interrupted as exc:
        for sig in INTERRUPT_SIGNALS:  # a second Ctrl-C must not cut the clean-up short
            if signal.getsignal(sig) is _raise_interrupted:
                signal.signal(sig, signal.SIG_IGN)
        if check is not None:
            check.stop()
        _err(f"playdeck: {signal.Signals(exc.signo).name} while checking the input, nothing was run")
        return 128 + exc.signo

    return run_headless(specs, args.max_parallel or file_parallel or 4, args.json, args.state_dir, interrupt)


def _console_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playdeck",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "The playdeck console, attached to your playdeck server. With a job file it submits those jobs "
            "to the server; with no arguments, run from the repository (or with --demo, from anywhere), it "
            "opens the sample inventory and playbooks.",
            79,
        ),
        epilog="headless command (no console; for scripts, CI and cron):\n"
        "  playdeck run JOBFILE [--json FILE]\n"
        "  playdeck run PLAYBOOK... -i INVENTORY [-l LIMIT] [--json FILE]\n"
        "see `playdeck run --help` for its options and exit statuses.\n\n"
        "engine server commands (a per-user server, started on demand; jobs outlive the terminal):\n"
        "  playdeck ls [--json] | submit JOBFILE | cancel JOB | retry JOB [--failed]\n"
        "  playdeck timeout JOB DURATION | logs JOB [-f] | server start|stop|status [--json]\n"
        "the console attaches to that server (starting it if needed): q asks before stopping jobs,\n"
        "d detaches and leaves them running; a lost terminal detaches too.",
    )
    parser.add_argument("jobfile", nargs="?", type=Path, help="a job file whose jobs start at once")
    parser.add_argument("-i", "--inventory", type=Path, help="inventory for the inventory pane and launches")
    parser.add_argument(
        "--yes", action="store_true", help="confirm that the job file's jobs may touch its protected hosts"
    )
    parser.add_argument("--theme", help="playdeck-dark (default), playdeck-light, playdeck-high-contrast, …")
    parser.add_argument("--demo", action="store_true", help="open the bundled sample inventory and playbooks")
    parser.add_argument("--playbooks", type=Path, help="directory of playbooks offered by `n`")
    parser.add_argument("--max-parallel", type=int, help="jobs running at once, for a server this starts (default 4)")
    parser.add_argument(
        "--state-dir", type=Path, help="where logs go, for a server this starts (default $XDG_STATE_HOME/playdeck)"
    )
    parser.add_argument("-V", "--version", action="version", version=f"playdeck {__version__}")
    return parser


def cmd_console(argv: list[str], app_class: Any = None, headless: bool = False) -> int:
    """The console. `app_class` and `headless` are for tests: the same path, without a terminal."""
    from tui.samples import sample_inventory, sample_playbooks  # noqa: PLC0415

    args = _console_parser().parse_args(argv)
    if args.max_parallel is not None and args.max_parallel < 1:
        _err("playdeck: --max-parallel must be at least 1")
        return EXIT_INVALID
    specs: list[JobSpec] = []
    protect: list[str] = []
    inventory = args.inventory.expanduser().resolve() if args.inventory else None
    playbook_dirs: list[Path] = []
    nodes: dict[str, Any] = {}
    max_parallel = args.max_parallel
    if inventory is not None and not inventory.exists():
        _err(f"playdeck: {inventory}: inventory does not exist")
        return EXIT_INVALID
    if args.jobfile is not None:
        try:
            job_file = load_job_file(args.jobfile, configured_nodes())
        except InputError as exc:
            _err("playdeck: invalid job file, nothing was started:")
            for problem in exc.problems:
                _err(f"  {problem}")
            return EXIT_INVALID
        specs = job_file.jobs
        protect = list(job_file.protect)
        nodes = dict(job_file.nodes)
        max_parallel = max_parallel or job_file.max_parallel
        inventory = inventory or specs[0].inventory
        playbook_dirs.append(job_file.path.parent)
    elif args.demo or inventory is None:
        found = sample_inventory(prefer_cwd=not args.demo)
        if found is None:
            _err("playdeck: no inventory: give a job file, -i INVENTORY, or --demo")
            return EXIT_INVALID
        inventory = inventory or found
        playbook_dirs.append(sample_playbooks(prefer_cwd=not args.demo) or found.parent)
    if args.playbooks:
        playbook_dirs.insert(0, args.playbooks.expanduser().resolve())
    problem = _state_dir_problem(args.state_dir)
    if problem is not None:
        _err(problem + ", the console was not started")
        return EXIT_INVALID

    from tui.console.config import load_config  # noqa: PLC0415 - Textual loads only for the console

    config = load_config()
    if config.playbook_dir:
        playbook_dirs.append(config.playbook_dir)
    if app_class is None:
        from tui.console.app import PlaydeckApp as app_class  # noqa: PLC0415, N813

    server_args: list[str] = []
    if args.state_dir is not None:
        server_args += ["--state-dir", str(args.state_dir.expanduser().absolute())]
    if max_parallel or config.max_parallel:
        server_args += ["--max-parallel", str(max_parallel or config.max_parallel)]

    async def attach_and_run() -> int:
        """Attach (starting the server if needed) and submit before the screen switches, so a
        server that cannot start, or a job file it refuses, is said on a plain terminal."""
        from tui.client.connection import ClientError, ServerError  # noqa: PLC0415
        from tui.client.session import attach  # noqa: PLC0415

        try:
            session = await attach(server_args=server_args)
        except (ClientError, OSError, TimeoutError) as exc:
            _err(f"playdeck: {strip_sgr(str(exc))}, the console was not started")
            return EXIT_UNREACHABLE
        try:
            if args.jobfile is not None:
                try:
                    await session.commands.submit(args.jobfile.expanduser().absolute(), yes=args.yes)
                except ServerError as exc:
                    _err(f"playdeck: {strip_sgr(exc.error)}")
                    for line in exc.problems:
                        _err(f"  {strip_sgr(line)}")
                    return EXIT_INVALID
            app = app_class(
                session=session,
                playbooks=[s.playbook for s in specs if s.playbook is not None],
                inventory=inventory,
                playbook_dirs=playbook_dirs,
                config=config,
                theme=args.theme,
                protect=protect,  # the job file's protected hosts guard the console's launches too
                nodes=nodes,
            )
            result = await app.run_async(headless=headless)
        finally:
            await session.close()
        # an unhandled exception ends the app with return_code 1 and a None result: never exit 0 for a crash
        if app.return_code:
            return app.return_code
        return result if isinstance(result, int) else 0

    import asyncio  # noqa: PLC0415

    return asyncio.run(attach_and_run())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return cmd_run(argv[1:])
    from tui.verbs import main as verbs_main  # noqa: PLC0415 - ls, submit, cancel, ... talk to the server

    status = verbs_main(argv)  # None: not a verb (a job file named like a verb: write ./ls)
    if status is not None:
        return status
    return cmd_console(argv)
