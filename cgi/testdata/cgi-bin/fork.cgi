#!/usr/bin/perl
# Tries to fork 1000 children; reports how many forks succeeded.
$| = 1;
my ($ok, $failed) = (0, 0);
for (1 .. 1000) {
    my $pid = fork();
    if (!defined $pid) { $failed++; next; }
    if ($pid == 0) { sleep 600; exit 0; }
    $ok++;
}
print "Content-Type: text/plain\r\n\r\nforked=$ok failed=$failed\n";
