#!/bin/bash
# perl: fork + waitpid with exit codes and signals, $$ / getppid between parent and child, pipes
# between processes, a signal handler, and regular expressions (captures, global match, substitution).
# The checks run in Perl and print PASS/FAIL lines.
. "$(dirname "$0")/../lib/tst.sh"
tst_need perl

perl -w - <<'END'
use strict;
use POSIX qw(:sys_wait_h);

my $failures = 0;
sub check {
    my ($ok, $desc, $detail) = @_;
    $| = 1;
    if ($ok) { print "PASS: $desc\n"; }
    else { $failures++; print "FAIL: $desc (", (defined $detail ? $detail : ""), ")\n"; }
}

# fork + waitpid
my $parent = $$;
pipe(my $r, my $w) or die "pipe: $!";
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    close $r;
    print $w "$$ " . getppid() . "\n";
    close $w;
    exit 9;
}
close $w;
my $line = <$r>;
close $r;
my ($cpid, $cppid) = split ' ', $line;
my $got = waitpid($pid, 0);
check($got == $pid, "waitpid returns the child's pid", "$got vs $pid");
check(WIFEXITED($?) && WEXITSTATUS($?) == 9, "the child's exit code (9)", $?);
check($cpid == $pid, "the child's \$\$ is the pid fork returned", "$cpid vs $pid");
check($cppid == $parent, "the child's getppid is the parent's \$\$", "$cppid vs $parent");

# several children reaped with WNOHANG polling and blocking waitpid(-1)
my %kids;
for my $i (1 .. 4) {
    my $k = fork();
    die "fork: $!" unless defined $k;
    if ($k == 0) { exit(20 + $i); }
    $kids{$k} = 20 + $i;
}
my $ok = 1;
while (%kids) {
    my $k = waitpid(-1, 0);
    if (!exists $kids{$k} || WEXITSTATUS($?) != $kids{$k}) { $ok = 0; last; }
    delete $kids{$k};
}
check($ok, "waitpid(-1) reaps 4 children, each with its own code");
check(waitpid(-1, WNOHANG) == -1, "waitpid(-1, WNOHANG) with no children returns -1");

# a child killed by a signal, and a signal handler
$pid = fork();
if ($pid == 0) { sleep 100; exit 0; }
kill 'TERM', $pid;
waitpid($pid, 0);
check(WIFSIGNALED($?) && WTERMSIG($?) == 15, "a child killed by SIGTERM", $?);
my $usr1 = 0;
local $SIG{USR1} = sub { $usr1++ };
kill 'USR1', $$;
check($usr1 == 1, "a %SIG handler runs for kill USR1, \$\$");

# backticks and system
my $out = `echo hello from sh`;
check($out eq "hello from sh\n", "backticks capture a command's output", $out);
system("sh", "-c", "exit 4");
check(($? >> 8) == 4, "system() returns the exit status in \$? >> 8", $?);
my $ppid_seen = `echo \$PPID`; # run by /bin/sh -c, a child of ours
chomp $ppid_seen;
check($ppid_seen == $$, "the shell run by backticks sees our \$\$ as its parent", "$ppid_seen vs $$");

# regular expressions
my $log = "2024-05-06 12:34:56 pid=4242 status=ok\n2024-05-06 12:35:00 pid=77 status=fail\n";
my @pids = $log =~ /pid=(\d+)/g;
check("@pids" eq "4242 77", "global match collects every capture", "@pids");
my ($y, $m, $d) = $log =~ /^(\d{4})-(\d\d)-(\d\d)/;
check("$y$m$d" eq "20240506", "anchored captures", "$y$m$d");
my %st = $log =~ /pid=(\d+) status=(\w+)/g;
check($st{77} eq "fail" && $st{4242} eq "ok", "captures into a hash");
(my $masked = $log) =~ s/pid=\d+/pid=N/g;
check(($masked =~ tr/N//) == 2 && $masked !~ /pid=\d/, "s///g substitutes every match");
check("Hello World" =~ /^hello\s+world$/i, "case-insensitive match with \\s+");
check("aaa" !~ /^a{4}$/, "a non-match");
my $n = () = "a,b,,c" =~ /,/g;
check($n == 3 && join("|", split(/,/, "a,b,,c")) eq "a|b||c", "split keeps empty fields");

exit($failures ? 1 : 0);
END
st=$?
[ "$st" = 0 ] || [ "$st" = 1 ] || echo "FAIL: perl exited with status $st"
[ "$st" = 0 ] || exit 1
exit 0
