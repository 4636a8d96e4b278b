#!/usr/bin/perl
# Prints the environment exactly as received, one NAME=value per line.
print "Content-Type: text/plain\r\n\r\n";
for my $k (sort keys %ENV) {
    print "$k=$ENV{$k}\n";
}
