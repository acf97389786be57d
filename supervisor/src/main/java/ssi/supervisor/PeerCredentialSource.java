package ssi.supervisor;

import io.netty.channel.Channel;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.unix.PeerCredentials;

import java.io.IOException;

/**
 * Who is at the other end of a control connection. The real source is SO_PEERCRED, which the kernel
 * fills at connect time and translates into this daemon's pid namespace (pid 0 for a caller outside
 * it); tests inject one that pretends to be another user. Called on the control event loop.
 */
@FunctionalInterface
interface PeerCredentialSource {
    Caller credentials(Channel channel) throws IOException;

    static PeerCredentialSource soPeerCred() {
        return ch -> {
            PeerCredentials pc = ((EpollDomainSocketChannel) ch).peerCredentials();
            return new Caller(pc.uid(), pc.pid());
        };
    }
}
