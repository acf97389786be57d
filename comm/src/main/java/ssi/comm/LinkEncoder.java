package ssi.comm;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToByteEncoder;

import javax.crypto.Mac;

/**
 * Turns link messages into frames and seals the ones sent after the handshake. The sequence number is
 * assigned here, at encode time, because this is the order in which frames reach the socket, whatever thread
 * wrote them. Owner thread: the channel's event loop.
 */
final class LinkEncoder extends MessageToByteEncoder<LinkWire.Message> {
    private Mac sealMac;
    private long seq;

    LinkEncoder() {
        super(LinkWire.Message.class);
    }

    /** From now on every message is sealed with this direction's session key. Event loop only. */
    void seal(Mac mac) {
        this.sealMac = mac;
    }

    /** Sized for the whole frame, so a large payload is copied once instead of regrown step by step. */
    @Override
    protected ByteBuf allocateBuffer(ChannelHandlerContext ctx, LinkWire.Message msg, boolean preferDirect) {
        int payload = switch (msg) {
            case LinkWire.Call c -> c.payload().length;
            case LinkWire.Reply r -> r.payload().length;
            default -> 0;
        };
        int size = 64 + payload;
        return preferDirect ? ctx.alloc().ioBuffer(size) : ctx.alloc().heapBuffer(size);
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, LinkWire.Message msg, ByteBuf out) {
        LinkWire.write(msg, sealMac, seq, out);
        if (sealMac != null) seq++;
    }
}
